#include "ble_service.h"

#include <bluefruit.h>
#include <string.h>

#include "board_pins.h"
#include "power.h"

namespace {

/* PROTOCOL.md UUIDs 7e1a000N-5c6b-4e8f-9a2d-3b4c5d6e7f80, in the
 * little-endian byte order Bluefruit expects (last byte of the text first). */
#define HIP_UUID128(n) \
    {0x80, 0x7f, 0x6e, 0x5d, 0x4c, 0x3b, 0x2d, 0x9a, 0x8f, 0x4e, 0x6b, 0x5c, (n), 0x00, 0x1a, 0x7e}
const uint8_t UUID_SERVICE[16] = HIP_UUID128(0x01);
const uint8_t UUID_DATA[16] = HIP_UUID128(0x02);
const uint8_t UUID_CONTROL[16] = HIP_UUID128(0x03);
const uint8_t UUID_CONFIG[16] = HIP_UUID128(0x04);

const uint16_t ATT_MTU_DEFAULT = 23;
const uint16_t NOTIFY_MAX = BLE_GATT_ATT_MTU_MAX - 3; /* 244 */
const uint16_t CONN_INTERVAL_15MS = 12;               /* units of 1.25 ms */

BLEService hip_service(UUID_SERVICE);
BLECharacteristic data_chr(UUID_DATA);
BLECharacteristic control_chr(UUID_CONTROL);
BLECharacteristic config_chr(UUID_CONFIG);
BLEDis dis;
BLEBas bas;

volatile uint16_t g_conn = BLE_CONN_HANDLE_INVALID;
volatile uint8_t g_connects = 0; /* edge counters: written by the callbacks only */
volatile uint8_t g_disconnects = 0;
uint8_t g_connects_seen = 0;      /* read by loop() only */
uint8_t g_disconnects_seen = 0;

/* Control writes, single producer (Bluefruit's task) / single consumer
 * (loop()). head and tail count up and wrap at 256; MAILBOX divides 256. */
struct Request {
    uint8_t len;
    uint8_t bytes[HIP_BLE_REQUEST_MAX];
};
const uint8_t MAILBOX = 8;
Request g_box[MAILBOX];
volatile uint8_t g_head = 0;
volatile uint8_t g_tail = 0;

void on_connect(uint16_t conn) {
    g_conn = conn;
    g_connects = (uint8_t)(g_connects + 1);
    power_wake(); /* loop() handles it at once */
}

void on_disconnect(uint16_t conn, uint8_t reason) {
    (void)reason;
    if (conn == g_conn) g_conn = BLE_CONN_HANDLE_INVALID;
    g_disconnects = (uint8_t)(g_disconnects + 1);
    power_wake(); /* loop() handles it at once */
}

void on_control_write(uint16_t conn, BLECharacteristic *chr, uint8_t *data, uint16_t len) {
    (void)conn;
    (void)chr;
    uint8_t head = g_head;
    if ((uint8_t)(head - g_tail) >= MAILBOX) return; /* host flooding: dropped, no response */
    Request &r = g_box[head % MAILBOX];
    r.len = (uint8_t)(len < HIP_BLE_REQUEST_MAX ? len : HIP_BLE_REQUEST_MAX);
    memcpy(r.bytes, data, r.len);
    __sync_synchronize(); /* the entry is complete before it is published */
    g_head = (uint8_t)(head + 1);
    power_wake(); /* loop() handles it at once */
}

}  // namespace

void ble_begin(const char *name, const char *serial, const uint8_t *config, size_t config_len) {
    Bluefruit.configPrphBandwidth(BANDWIDTH_MAX); /* MTU 247, long connection events */
    Bluefruit.begin();
    Bluefruit.autoConnLed(false); /* the LED is ours (led.cpp) */
    Bluefruit.setTxPower(0);
    Bluefruit.setName(name);
    Bluefruit.Periph.setConnectCallback(on_connect);
    Bluefruit.Periph.setDisconnectCallback(on_disconnect);
    Bluefruit.Periph.setConnInterval(CONN_INTERVAL_15MS, CONN_INTERVAL_15MS);

    /* name and serial must stay valid: DIS keeps the pointers */
    dis.setManufacturer("hipimu");
    dis.setModel(HIP_MODEL_STRING);
    dis.setSerialNum(serial);
    dis.setFirmwareRev(HIP_FW_STRING);
    dis.begin();
    bas.begin();
    bas.write(0);

    hip_service.begin();
    data_chr.setProperties(CHR_PROPS_NOTIFY);
    data_chr.setPermission(SECMODE_OPEN, SECMODE_NO_ACCESS);
    data_chr.setMaxLen(NOTIFY_MAX);
    data_chr.begin();

    control_chr.setProperties(CHR_PROPS_WRITE | CHR_PROPS_NOTIFY);
    control_chr.setPermission(SECMODE_OPEN, SECMODE_OPEN);
    control_chr.setMaxLen(NOTIFY_MAX); /* longer writes still get an answer (ERR_BAD_LENGTH) */
    control_chr.setWriteCallback(on_control_write);
    control_chr.begin();

    config_chr.setProperties(CHR_PROPS_READ);
    config_chr.setPermission(SECMODE_OPEN, SECMODE_NO_ACCESS);
    config_chr.setFixedLen((uint16_t)config_len);
    config_chr.begin();
    config_chr.write(config, (uint16_t)config_len);

    /* Flags (3 bytes) + the 128-bit service UUID (18) leave 10 bytes of the
     * 31: "hipimu-xxxx" (13 with its header) goes into the scan response. */
    Bluefruit.Advertising.addFlags(BLE_GAP_ADV_FLAGS_LE_ONLY_GENERAL_DISC_MODE);
    Bluefruit.Advertising.addService(hip_service);
    Bluefruit.ScanResponse.addName();
    Bluefruit.Advertising.restartOnDisconnect(true);
    Bluefruit.Advertising.setInterval(32, 244); /* 20 ms for the first 30 s, then 152.5 ms */
    Bluefruit.Advertising.setFastTimeout(30);
    Bluefruit.Advertising.start(0); /* 0: until connected */
}

bool ble_connected() { return g_conn != BLE_CONN_HANDLE_INVALID; }

uint16_t ble_mtu() {
    uint16_t conn = g_conn;
    if (conn == BLE_CONN_HANDLE_INVALID) return ATT_MTU_DEFAULT;
    BLEConnection *c = Bluefruit.Connection(conn);
    return c != NULL ? c->getMtu() : ATT_MTU_DEFAULT;
}

bool ble_take_connected() {
    uint8_t n = g_connects;
    bool edge = n != g_connects_seen;
    g_connects_seen = n;
    return edge;
}

bool ble_take_disconnected() {
    uint8_t n = g_disconnects;
    bool edge = n != g_disconnects_seen;
    g_disconnects_seen = n;
    return edge;
}

void ble_request_link_params() {
    uint16_t conn = g_conn;
    if (conn == BLE_CONN_HANDLE_INVALID) return;
    BLEConnection *c = Bluefruit.Connection(conn);
    if (c == NULL) return;
    c->requestPHY(BLE_GAP_PHY_2MBPS);     /* half the air time per packet */
    c->requestDataLengthUpdate();         /* one 244-byte notification per radio packet */
    c->requestMtuExchange(BLE_GATT_ATT_MTU_MAX);
    c->requestConnectionParameter(CONN_INTERVAL_15MS);
}

bool ble_next_request(uint8_t *req, size_t *len) {
    uint8_t tail = g_tail;
    if (tail == g_head) return false;
    __sync_synchronize();
    const Request &r = g_box[tail % MAILBOX];
    memcpy(req, r.bytes, r.len);
    *len = r.len;
    __sync_synchronize();
    g_tail = (uint8_t)(tail + 1);
    return true;
}

bool ble_notify_response(const uint8_t *resp, size_t len) {
    uint16_t conn = g_conn;
    return conn != BLE_CONN_HANDLE_INVALID && control_chr.notify(conn, resp, (uint16_t)len);
}

bool ble_data_notify_enabled() {
    uint16_t conn = g_conn;
    return conn != BLE_CONN_HANDLE_INVALID && data_chr.notifyEnabled(conn);
}

bool ble_notify_data(const uint8_t *packet, size_t len) {
    uint16_t conn = g_conn;
    return conn != BLE_CONN_HANDLE_INVALID && data_chr.notify(conn, packet, (uint16_t)len);
}

void ble_set_config(const uint8_t *config, size_t len) { config_chr.write(config, (uint16_t)len); }

void ble_set_battery(uint8_t percent) {
    bas.write(percent);
    uint16_t conn = g_conn;
    if (conn != BLE_CONN_HANDLE_INVALID) bas.notify(conn, percent);
}

void ble_stop_advertising() { Bluefruit.Advertising.stop(); }
