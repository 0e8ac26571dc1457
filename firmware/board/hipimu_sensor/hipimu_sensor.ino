/*
 * hipimu sensor firmware: the board layer for the Seeed XIAO nRF52840 Sense.
 *
 * It only moves bytes: IMU FIFO -> hip_fifo_push, control writes ->
 * hip_handle_command -> response notification, hip_next_packet -> data
 * notification, battery/charger/MTU -> fields of the core's hip_device. Every
 * protocol decision (batching, drops, sequence numbers, command checks,
 * config bytes) is made by the portable core (firmware/core/, copied into
 * src/hipimu_core/ by ../sync_core.sh). See ../README.md and ../../../hardware.md.
 *
 * Everything below runs in loop()'s task; Bluefruit's callbacks only queue
 * (ble_service.cpp).
 */
#include <Arduino.h>
#include <string.h>

#include "src/hipimu_core/hipimu_core.h"

#include "battery.h"
#include "ble_service.h"
#include "board_pins.h"
#include "imu_lsm6ds3.h"
#include "led.h"
#include "mag_lis3mdl.h"
#include "power.h"

static hip_device dev; /* all protocol state; the core owns its meaning */
static hip_clock clk;
static char adv_name[16]; /* "hipimu-xxxx" */
static char serial[17];   /* device id, 16 lowercase hex digits */

static uint32_t period_us_x16;    /* IMU sample period, 1/16 us */
static uint64_t settle_until_us;  /* samples before this are gyro start-up */
static uint32_t next_poll_ms;
static uint32_t next_battery_ms;
static uint32_t last_link_ms;     /* last moment we were connected or on USB */
static uint32_t identify_until_ms;
static bool identify_active;
static bool config_dirty;
static uint8_t low_voltage_count;
static int16_t last_mag[3];
static uint32_t imu_overruns;     /* IMU FIFO overflows, reported to the core as lost samples */
static uint64_t last_pushed_us;   /* time of the newest sample handed to the core */

static uint64_t now_us() { return hip_clock_now_us(&clk, power_rtc_ticks()); }

static bool reached(uint32_t now_ms, uint32_t deadline_ms) { return (int32_t)(now_ms - deadline_ms) >= 0; }

/* FICR DEVICEID as 8 bytes, most significant first: DEVICEID[1] is the high word. */
static void read_device_id(uint8_t id[8]) {
    uint32_t hi = NRF_FICR->DEVICEID[1], lo = NRF_FICR->DEVICEID[0];
    for (uint8_t i = 0; i < 4; i++) {
        id[i] = (uint8_t)(hi >> (24 - 8 * i));
        id[4 + i] = (uint8_t)(lo >> (24 - 8 * i));
    }
}

static void format_identity() {
    static const char HEX_DIGITS[] = "0123456789abcdef";
    for (uint8_t i = 0; i < 8; i++) {
        serial[2 * i] = HEX_DIGITS[dev.device_id[i] >> 4];
        serial[2 * i + 1] = HEX_DIGITS[dev.device_id[i] & 0x0F];
    }
    serial[16] = '\0';
    memcpy(adv_name, "hipimu-", 7);
    memcpy(adv_name + 7, serial + 12, 5); /* last 4 hex digits and the NUL */
}

static void publish_config() {
    uint8_t cfg[HIP_CONFIG_SIZE];
    if (hip_encode_config(&dev, cfg, sizeof cfg) == HIP_CONFIG_SIZE) ble_set_config(cfg, sizeof cfg);
    config_dirty = false;
}

/* ---- streaming on/off: follow what the core decided ------------------------- */

static void run_command(const uint8_t *req, size_t len, bool reply);

static void start_streaming() { /* the core has emptied its FIFO and reset seq */
    period_us_x16 = (16000000u + dev.rate_hz / 2u) / dev.rate_hz;
    settle_until_us = now_us() + HIP_IMU_SETTLE_US;
    next_poll_ms = millis() + HIP_IMU_POLL_MS;
    bool ok = imu_start(dev.rate_hz, dev.acc_range_g, dev.gyr_range_dps);
    if (!ok) dev.imu_ok = false;
    if (ok && dev.mag_enabled && !mag_start()) {
        dev.mag_ok = false;
        ok = false;
    }
    if (!ok) { /* the part stopped answering after START was accepted */
        static const uint8_t STOP[2] = {HIP_OP_STOP, 0};
        run_command(STOP, sizeof STOP, false);
    }
}

static void stop_streaming() {
    imu_stop();
    mag_stop();
}

/* Hand one request to the core, answer it, and apply what changed. */
static void run_command(const uint8_t *req, size_t len, bool reply) {
    bool was_streaming = dev.streaming;
    uint8_t resp[HIP_RESPONSE_MAX];
    size_t n = hip_handle_command(&dev, req, len, now_us(), resp, sizeof resp);
    if (reply) ble_notify_response(resp, n);
    if (n >= 3 && resp[0] == (0x80 | HIP_OP_IDENTIFY) && resp[2] == HIP_OK && dev.identify_seconds > 0) {
        identify_active = true;
        identify_until_ms = millis() + 1000u * dev.identify_seconds;
    }
    if (!was_streaming && dev.streaming) start_streaming();
    else if (was_streaming && !dev.streaming) stop_streaming();
    config_dirty = true;
}

/* ---- loop() steps -------------------------------------------------------------- */

static void service_link(uint32_t ms) {
    if (ble_take_connected()) {
        ble_request_link_params();
        config_dirty = true;
    }
    if (ble_take_disconnected() && dev.streaming) {
        static const uint8_t STOP[2] = {HIP_OP_STOP, 0}; /* nobody to stream to */
        run_command(STOP, sizeof STOP, false);
    }
    uint16_t mtu = ble_mtu();
    if (mtu != dev.att_mtu) {
        dev.att_mtu = mtu;
        config_dirty = true;
    }
    if (ble_connected() || power_usb_present()) last_link_ms = ms;
}

static void service_commands() {
    uint8_t req[HIP_BLE_REQUEST_MAX];
    size_t len;
    while (ble_next_request(req, &len)) run_command(req, len, true);
}

static void service_imu(uint32_t ms) {
    bool irq = imu_take_irq(); /* FIFO threshold: read now, the anchor is fresh */
    if (!dev.streaming || !(irq || reached(ms, next_poll_ms))) return;
    next_poll_ms = ms + HIP_IMU_POLL_MS; /* fallback if an edge is missed */

    bool overrun = false;
    uint16_t n = imu_fifo_samples(&overrun);
    uint64_t t_read = now_us(); /* the newest of the n was taken < 1 period ago */
    if (n == 0) return;
    if (overrun) { /* the IMU's own FIFO overflowed: tell the core how many are missing */
        imu_overruns++;
        uint64_t t_first = hip_burst_sample_time_us(t_read, n, 0, period_us_x16);
        uint64_t gap_x16 = (t_first > last_pushed_us) ? (t_first - last_pushed_us) * 16u : 0u;
        uint32_t lost = (uint32_t)((gap_x16 + period_us_x16 / 2u) / period_us_x16);
        hip_fifo_note_lost(&dev.fifo, lost > 1u ? lost - 1u : 1u);
    }
    bool with_mag = dev.mag_enabled;
    if (with_mag) mag_read(last_mag); /* sample and hold: 80 Hz under 52-208 Hz */

    const uint16_t CHUNK = 8;
    int16_t burst[CHUNK * 6];
    for (uint16_t i = 0; i < n;) {
        uint16_t k = (uint16_t)((n - i) < CHUNK ? (n - i) : CHUNK);
        uint16_t got = imu_fifo_read(burst, k);
        for (uint16_t j = 0; j < got; j++) {
            uint64_t t = hip_burst_sample_time_us(t_read, n, (uint16_t)(i + j), period_us_x16);
            if (t < settle_until_us) continue;
            int16_t v[HIP_AXES_MAX];
            memcpy(v, burst + 6 * j, 6 * sizeof(int16_t));
            if (with_mag) memcpy(v + 6, last_mag, sizeof last_mag);
            hip_fifo_push(&dev.fifo, t, v, (uint8_t)(with_mag ? 9 : 6)); /* full: the core counts the drop */
            last_pushed_us = t;
        }
        if (got < k) break; /* bus error: the rest waits for the next poll */
        i = (uint16_t)(i + got);
    }
}

static void service_packets() {
    if (!dev.streaming || !ble_data_notify_enabled()) return; /* not subscribed: the FIFO fills, drops are counted */
    static uint8_t packet[HIP_PACKET_MAX];
    for (uint8_t i = 0; i < 8; i++) { /* bounded, so loop() keeps turning */
        size_t len = hip_next_packet(&dev, now_us(), packet, sizeof packet);
        if (len == 0) break;
        ble_notify_data(packet, len); /* waits for a free radio buffer */
    }
}

static void shut_down() {
    ble_stop_advertising();
    led_off();
    mag_stop();
    imu_power_off();
    power_system_off(); /* does not return */
}

static void service_battery(uint32_t ms) {
    bool charging = battery_charging();
    if (charging != dev.charging) {
        dev.charging = charging;
        config_dirty = true;
    }
    if (!reached(ms, next_battery_ms)) return;
    next_battery_ms = ms + HIP_BATTERY_PERIOD_MS;
    uint16_t mv = battery_read_mv();
    uint8_t percent = battery_percent(mv);
    if (percent != dev.battery_percent) {
        dev.battery_percent = percent;
        ble_set_battery(percent);
        config_dirty = true;
    }
    /* protect the cell: three low readings in a row (90 s) and no USB */
    if (mv < HIP_BATTERY_CUTOFF_MV && !charging && !power_usb_present()) {
        if (++low_voltage_count >= 3) shut_down();
    } else {
        low_voltage_count = 0;
    }
}

static LedPattern led_pattern() {
    if (identify_active) return LED_IDENTIFY;
    if (!dev.imu_ok) return LED_FAULT;
    if (dev.streaming) return LED_STREAMING;
    return ble_connected() ? LED_CONNECTED : LED_ADVERTISING;
}

/* ---- Arduino entry points ------------------------------------------------------ */

void setup() {
    battery_begin(); /* first: P0.14 LOW before anything else */
    led_begin();
    power_begin();
    hip_clock_init(&clk);
    hip_device_init(&dev);

    read_device_id(dev.device_id);
    dev.fw_version[0] = HIP_FW_MAJOR;
    dev.fw_version[1] = HIP_FW_MINOR;
    dev.fw_version[2] = HIP_FW_PATCH;
    dev.imu_part = 1; /* LSM6DS3TR-C */
    dev.imu_ok = imu_begin();
    dev.mag_ok = mag_begin();
    dev.mag_part = dev.mag_ok ? 1 : 0; /* LIS3MDL */
    dev.charging = battery_charging();
    dev.battery_percent = battery_percent(battery_read_mv());
    format_identity();

    uint8_t cfg[HIP_CONFIG_SIZE];
    hip_encode_config(&dev, cfg, sizeof cfg);
    ble_begin(adv_name, serial, cfg, sizeof cfg);
    ble_set_battery(dev.battery_percent);

    led_boot_flash();
    uint32_t ms = millis();
    last_link_ms = ms;
    next_battery_ms = ms + HIP_BATTERY_PERIOD_MS;
}

void loop() {
    uint32_t ms = millis();
    service_link(ms);
    service_commands();
    service_imu(ms);
    service_packets();
    service_battery(ms);
    if (identify_active && reached(ms, identify_until_ms)) {
        identify_active = false;
        dev.identify_seconds = 0;
    }
    if (config_dirty) publish_config();
    if (!ble_connected() && reached(ms, last_link_ms + HIP_ADVERTISE_OFF_MS)) shut_down();

    /* sleep until the LED, the fallback IMU poll or the oldest sample's packet
     * deadline (PROTOCOL.md: at most 50 ms) needs us; INT1 and BLE wake us earlier */
    uint32_t wait = led_update(led_pattern(), dev.battery_percent < HIP_BATTERY_LOW_PERCENT && !dev.charging, ms);
    if (dev.streaming) {
        uint32_t to_poll = reached(ms, next_poll_ms) ? 0 : next_poll_ms - ms;
        if (to_poll < wait) wait = to_poll;
        if (hip_fifo_count(&dev.fifo) > 0 && ble_data_notify_enabled()) {
            uint64_t due = hip_fifo_peek(&dev.fifo, 0)->t_us + HIP_MAX_PACKET_DELAY_US, now = now_us();
            uint32_t to_due = due > now ? (uint32_t)((due - now + 999u) / 1000u) : 1u;
            if (to_due < wait) wait = to_due;
        }
    }
    if (wait > 1000u) wait = 1000u; /* the battery and auto-off checks */
    power_wait(wait);
}
