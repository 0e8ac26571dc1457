/*
 * Fake hardware for running the board layer on a PC (run_sim.sh): simulated
 * time, an LSM6DS3TR-C with a FIFO that fills at its ODR (0.5 % fast, like a
 * real part's oscillator error), an optional LIS3MDL, and a Bluefruit that
 * logs notifications. It implements the declarations in ../stubs/. The
 * sketch and the real core run unchanged on top of it.
 *
 * Output (stdout), one line each: "D <sim_us> <hex>" data notification,
 * "C <sim_us> <hex>" control notification, "G <hex>" config value,
 * "OFF <sim_us>" System OFF.
 */
#include <Arduino.h>
#include <Wire.h>
#include <bluefruit.h>
#include <nrf_soc.h>

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <deque>
#include <vector>

#include "sim.h"

/* ---- time ---------------------------------------------------------------------------- */

uint64_t g_sim_us = 0;
static NRF_RTC_Type g_rtc2;
static NRF_FICR_Type g_ficr = {{0x89abcdefu, 0x01234567u}}; /* id 0123456789abcdef */
NRF_RTC_Type *NRF_RTC2 = &g_rtc2;
NRF_FICR_Type *NRF_FICR = &g_ficr;

static bool g_sem_given = false;
static bool advance_to(uint64_t end_us, bool wake_on_semaphore); /* below, after the IMU */

static void set_time(uint64_t t_us) {
    g_sim_us = t_us;
    g_rtc2.COUNTER = (uint32_t)((g_sim_us * 32768u / 1000000u) & 0xFFFFFFu);
}

void sim_advance(uint64_t us) { advance_to(g_sim_us + us, false); }

uint32_t millis(void) { return (uint32_t)(g_sim_us / 1000u); }
void delay(uint32_t ms) { sim_advance(1000u * (uint64_t)ms); }

SemaphoreHandle_t xSemaphoreCreateBinary(void) { return &g_sem_given; }
BaseType_t xSemaphoreGive(SemaphoreHandle_t) {
    g_sem_given = true;
    return 1;
}
BaseType_t xSemaphoreTake(SemaphoreHandle_t, TickType_t ticks) {
    if (g_sem_given || advance_to(g_sim_us + 1000u * (uint64_t)ticks, true)) {
        g_sem_given = false;
        return 1;
    }
    return 0;
}

/* ---- GPIO, ADC, SoftDevice ------------------------------------------------------------ */

static bool g_imu_powered = false;
static voidFuncPtr g_int1_handler = NULL;
int attachInterrupt(uint32_t pin, voidFuncPtr callback, uint32_t) {
    if (pin == PIN_LSM6DS3TR_C_INT1) g_int1_handler = callback;
    return 0;
}
void detachInterrupt(uint32_t pin) {
    if (pin == PIN_LSM6DS3TR_C_INT1) g_int1_handler = NULL;
}
void pinMode(uint32_t, uint32_t) {}
void digitalWrite(uint32_t pin, uint32_t value) {
    if (pin == PIN_LSM6DS3TR_C_POWER) g_imu_powered = (value == HIGH);
}
int digitalRead(uint32_t) { return HIGH; }        /* ~CHG high: not charging */
uint32_t analogRead(uint32_t) { return 1798; }    /* 3.9 V cell behind the divider */
void analogReference(eAnalogReference) {}
void analogReadResolution(int) {}
void analogSampleTime(uint8_t) {}

jmp_buf g_system_off;
uint32_t sd_power_usbregstatus_get(uint32_t *status) {
    *status = 0; /* on battery */
    return NRF_SUCCESS;
}
uint32_t sd_power_system_off(void) {
    printf("OFF %llu\n", (unsigned long long)g_sim_us);
    longjmp(g_system_off, 1);
}

/* ---- LSM6DS3TR-C ------------------------------------------------------------------------ */

namespace {

struct FakeImu {
    uint8_t reg[128] = {};
    std::deque<int16_t> fifo; /* words, Gx Gy Gz Ax Ay Az per sample */
    uint32_t next_index = 0;  /* sample counter, carried in the values */
    uint64_t next_sample_us = 0;
    uint32_t period_ns = 0;   /* 0: not sampling */
    unsigned head_word = 0;   /* word index (0..5) of fifo.front() */
    bool overrun = false;
    bool int1 = false;        /* level of the INT1 line */

    /* INT1 = FIFO level >= threshold, if routed; a rising edge runs the
     * (deferred) handler, which wakes loop() */
    void update_int1() {
        size_t fth = (size_t)(reg[0x06] | ((reg[0x07] & 0x07) << 8));
        bool level = (reg[0x0D] & 0x08) && fth > 0 && fifo.size() >= fth;
        if (level && !int1 && g_int1_handler != NULL) g_int1_handler();
        int1 = level;
    }

    void configure() {
        uint8_t code = reg[0x10] >> 4; /* CTRL1_XL */
        bool continuous = (reg[0x0A] & 0x07) == 0x06;
        uint32_t hz = code == 3 ? 52 : code == 4 ? 104 : code == 5 ? 208 : 0;
        if (!continuous || hz == 0) {
            fifo.clear();
            head_word = 0;
            period_ns = 0;
            return;
        }
        if (period_ns == 0) next_sample_us = g_sim_us;
        period_ns = (uint32_t)(1e9 / (hz * 1.005)); /* the part runs 0.5 % fast */
    }

    void produce() {
        while (period_ns != 0 && next_sample_us <= g_sim_us) {
            int16_t k = (int16_t)(next_index++ & 0x7FFF);
            const int16_t words[6] = {k, 100, -100, (int16_t)(k ^ 0x5555), 200, 4096};
            for (int16_t w : words) fifo.push_back(w);
            while (fifo.size() > 2048) { /* continuous mode: the oldest sample goes */
                for (int i = 0; i < 6; i++) fifo.pop_front();
                overrun = true;
            }
            next_sample_us += period_ns / 1000u;
            update_int1();
        }
    }

    uint8_t read_byte(uint8_t r, unsigned *fifo_byte) {
        switch (r) {
        case 0x0F: return 0x6A;
        case 0x3A: return (uint8_t)(fifo.size() & 0xFF);
        case 0x3B: return (uint8_t)(((fifo.size() >> 8) & 0x07) | (fifo.empty() ? 0x10 : 0) | (overrun ? 0x40 : 0));
        case 0x3C: return (uint8_t)(head_word & 0xFF);
        case 0x3D: return 0;
        case 0x3E:
        case 0x3F: {
            if (fifo.empty()) return 0;
            int16_t w = fifo.front();
            uint8_t b = (*fifo_byte & 1) ? (uint8_t)((uint16_t)w >> 8) : (uint8_t)(w & 0xFF);
            if (*fifo_byte & 1) {
                fifo.pop_front();
                head_word = (head_word + 1) % 6;
                update_int1();
            }
            (*fifo_byte)++;
            return b;
        }
        default: return reg[r & 0x7F];
        }
    }
};

FakeImu g_imu;

struct FakeMag {
    bool present = false;
    uint8_t reg[64] = {};
    uint8_t read_byte(uint8_t r) {
        if (r == 0x0F) return 0x3D;
        if (r >= 0x28 && r <= 0x2D) { /* x=1000 y=-2000 z=3000 */
            static const int16_t v[3] = {1000, -2000, 3000};
            int16_t w = v[(r - 0x28) / 2];
            return (r & 1) ? (uint8_t)((uint16_t)w >> 8) : (uint8_t)(w & 0xFF);
        }
        return reg[r & 0x3F];
    }
};

FakeMag g_mag;

}  // namespace

void sim_set_mag_present(bool present) { g_mag.present = present; }

/* Step simulated time to end_us, one IMU sample at a time. With
 * wake_on_semaphore, stop early (150 us after the edge: deferred-interrupt
 * latency) when the INT1 handler woke loop(). */
static bool advance_to(uint64_t end_us, bool wake_on_semaphore) {
    for (;;) {
        uint64_t next = g_imu.period_ns != 0 ? g_imu.next_sample_us : UINT64_MAX;
        if (next > end_us) {
            set_time(end_us);
            return false;
        }
        if (next > g_sim_us) set_time(next);
        g_imu.produce();
        if (wake_on_semaphore && g_sem_given) {
            set_time(g_sim_us + 150u < end_us ? g_sim_us + 150u : end_us);
            return true;
        }
    }
}

/* ---- Wire ------------------------------------------------------------------------------- */

TwoWire Wire;
TwoWire Wire1;

namespace {
struct Bus {
    uint8_t addr = 0;
    std::vector<uint8_t> tx, rx;
    size_t rx_pos = 0;
    uint8_t ptr = 0;
};
Bus g_bus[2];
Bus &bus_of(TwoWire *w) { return g_bus[w == &Wire1 ? 1 : 0]; }
bool present(TwoWire *w, uint8_t addr) {
    if (w == &Wire1) return addr == 0x6A && g_imu_powered;
    return addr == 0x1C && g_mag.present;
}
}  // namespace

void TwoWire::begin() {}
void TwoWire::end() {}
void TwoWire::setClock(uint32_t) {}
void TwoWire::beginTransmission(uint8_t address) {
    Bus &b = bus_of(this);
    b.addr = address;
    b.tx.clear();
}
size_t TwoWire::write(uint8_t data) {
    bus_of(this).tx.push_back(data);
    return 1;
}
size_t TwoWire::write(const uint8_t *data, size_t n) {
    for (size_t i = 0; i < n; i++) write(data[i]);
    return n;
}
uint8_t TwoWire::endTransmission(bool) {
    Bus &b = bus_of(this);
    sim_advance(25u * (b.tx.size() + 1)); /* ~25 us per byte at 400 kHz */
    if (!present(this, b.addr)) return 2;   /* address NACK */
    if (b.tx.empty()) return 0;
    b.ptr = b.tx[0];
    for (size_t i = 1; i < b.tx.size(); i++) {
        uint8_t r = (uint8_t)((b.ptr & 0x7F) + i - 1);
        if (this == &Wire1) {
            g_imu.produce();
            g_imu.reg[r] = b.tx[i];
            if (r == 0x10 || r == 0x0A) g_imu.configure();
        } else {
            g_mag.reg[r & 0x3F] = b.tx[i];
        }
    }
    return 0;
}
uint8_t TwoWire::endTransmission(void) { return endTransmission(true); }
uint8_t TwoWire::requestFrom(uint8_t address, size_t quantity, bool) {
    Bus &b = bus_of(this);
    sim_advance(25u * (quantity + 1));
    b.rx.clear();
    b.rx_pos = 0;
    if (!present(this, address)) return 0;
    unsigned fifo_byte = 0;
    if (this == &Wire1) g_imu.produce();
    for (size_t i = 0; i < quantity; i++) {
        if (this == &Wire1) {
            uint8_t r = b.ptr;
            if (r < 0x3E) r = (uint8_t)(b.ptr + i); /* auto-increment; FIFO output stays put */
            b.rx.push_back(g_imu.read_byte(r, &fifo_byte));
            if (r == 0x3B) g_imu.overrun = false; /* reported once */
        } else {
            uint8_t r = (b.ptr & 0x80) ? (uint8_t)((b.ptr & 0x7F) + i) : b.ptr;
            b.rx.push_back(g_mag.read_byte(r));
        }
    }
    return (uint8_t)quantity;
}
uint8_t TwoWire::requestFrom(uint8_t address, size_t quantity) { return requestFrom(address, quantity, true); }
int TwoWire::available(void) {
    Bus &b = bus_of(this);
    return (int)(b.rx.size() - b.rx_pos);
}
int TwoWire::read(void) {
    Bus &b = bus_of(this);
    return b.rx_pos < b.rx.size() ? b.rx[b.rx_pos++] : -1;
}

/* ---- Bluefruit -------------------------------------------------------------------------- */

AdafruitBluefruit Bluefruit;
static BLECharacteristic::write_cb_t g_control_cb = NULL;
static ble_connect_callback_t g_connect_cb = NULL;
static ble_disconnect_callback_t g_disconnect_cb = NULL;
static uint16_t g_mtu = 23;
static bool g_notify_enabled = false;
static BLEConnection g_connection;

static void print_hex(const char *tag, const void *data, uint16_t len) {
    const uint8_t *p = (const uint8_t *)data;
    printf("%s %llu ", tag, (unsigned long long)g_sim_us);
    for (uint16_t i = 0; i < len; i++) printf("%02x", p[i]);
    printf("\n");
}

static uint8_t g_last_uuid_tag = 0;
BLEUuid::BLEUuid(uint16_t) { g_last_uuid_tag = 0; }
BLEUuid::BLEUuid(uint8_t const uuid128[16]) { g_last_uuid_tag = uuid128[12]; }
BLEService::BLEService(void) {}
BLEService::BLEService(BLEUuid) {}
err_t BLEService::begin(void) { return 0; }

/* The characteristic's identity is kept in a side table keyed by `this`. */
namespace {
struct ChrTag {
    const BLECharacteristic *chr;
    uint8_t tag;
};
std::vector<ChrTag> &chr_tags() {
    static std::vector<ChrTag> v;
    return v;
}
uint8_t tag_of(const BLECharacteristic *c) {
    for (const ChrTag &t : chr_tags())
        if (t.chr == c) return t.tag;
    return 0;
}
}  // namespace

BLECharacteristic::BLECharacteristic(BLEUuid) { chr_tags().push_back({this, g_last_uuid_tag}); }
void BLECharacteristic::setProperties(uint8_t) {}
void BLECharacteristic::setPermission(SecureMode_t, SecureMode_t) {}
void BLECharacteristic::setMaxLen(uint16_t) {}
void BLECharacteristic::setFixedLen(uint16_t) {}
void BLECharacteristic::setWriteCallback(write_cb_t fp, bool) { g_control_cb = fp; }
err_t BLECharacteristic::begin(void) { return 0; }
uint16_t BLECharacteristic::write(const void *data, uint16_t len) {
    if (tag_of(this) == 0x04) print_hex("G", data, len);
    return len;
}
bool BLECharacteristic::notifyEnabled(uint16_t) { return g_notify_enabled; }
bool BLECharacteristic::notify(uint16_t, const void *data, uint16_t len) {
    uint8_t tag = tag_of(this);
    if (tag == 0x02 && !g_notify_enabled) return false;
    if (len > g_mtu - 3) return false; /* larger than the ATT payload: the stack refuses */
    print_hex(tag == 0x02 ? "D" : "C", data, len);
    return true;
}

void BLEDis::setModel(const char *) {}
void BLEDis::setSerialNum(const char *) {}
void BLEDis::setFirmwareRev(const char *) {}
void BLEDis::setManufacturer(const char *) {}
err_t BLEDis::begin(void) { return 0; }
err_t BLEBas::begin(void) { return 0; }
bool BLEBas::write(uint8_t) { return true; }
bool BLEBas::notify(uint16_t, uint8_t) { return true; }

uint16_t BLEConnection::getMtu(void) { return g_mtu; }
bool BLEConnection::requestDataLengthUpdate(const void *, void *) { return true; }
bool BLEConnection::requestMtuExchange(uint16_t) { return true; }
bool BLEConnection::requestPHY(uint8_t) { return true; }
bool BLEConnection::requestConnectionParameter(uint16_t, uint16_t, uint16_t) { return true; }

bool BLEPeriph::setConnInterval(uint16_t, uint16_t) { return true; }
void BLEPeriph::setConnectCallback(ble_connect_callback_t fp) { g_connect_cb = fp; }
void BLEPeriph::setDisconnectCallback(ble_disconnect_callback_t fp) { g_disconnect_cb = fp; }
bool BLEAdvertisingData::addFlags(uint8_t) { return true; }
bool BLEAdvertisingData::addName(void) { return true; }
bool BLEAdvertisingData::addService(BLEService &) { return true; }
void BLEAdvertising::setFastTimeout(uint16_t) {}
void BLEAdvertising::setInterval(uint16_t, uint16_t) {}
void BLEAdvertising::restartOnDisconnect(bool) {}
bool BLEAdvertising::start(uint16_t) { return true; }
bool BLEAdvertising::stop(void) { return true; }
void AdafruitBluefruit::configPrphBandwidth(uint8_t) {}
bool AdafruitBluefruit::begin(uint8_t, uint8_t) { return true; }
void AdafruitBluefruit::setName(const char *name) { printf("NAME %s\n", name); }
bool AdafruitBluefruit::setTxPower(int8_t) { return true; }
void AdafruitBluefruit::autoConnLed(bool) {}
BLEConnection *AdafruitBluefruit::Connection(uint16_t) { return &g_connection; }

/* ---- what the simulated host does ------------------------------------------------------- */

void sim_connect(uint16_t mtu) {
    g_mtu = mtu;
    g_connect_cb(1);
}
void sim_disconnect() {
    g_notify_enabled = false;
    g_mtu = 23;
    g_disconnect_cb(1, 0x13);
}
void sim_subscribe() { g_notify_enabled = true; }
void sim_write_control(const uint8_t *req, uint16_t len) {
    uint8_t copy[64];
    memcpy(copy, req, len);
    g_control_cb(1, NULL, copy, len);
}
