/* Device defaults, the config characteristic, scales and every command
 * (PROTOCOL.md, "Config characteristic" and "Commands"). */
#include "test_util.h"

static hip_device dev; /* 8 KiB: static, not on the stack */
static hip_device before;

enum { OK = 0, UNKNOWN_OPCODE = 1, BAD_LENGTH = 2, BAD_VALUE = 3, BUSY = 4, MTU_TOO_SMALL = 5, NO_SENSOR = 6 };

/* Request size of each opcode 1..8, opcode and token included. */
static const size_t request_size[9] = {0, 2, 2, 4, 5, 3, 6, 2, 3};

/* Sends and checks that a failing request changes nothing and has no payload. */
static void expect_error(const uint8_t *req, size_t len, uint8_t status)
{
    before = dev;
    size_t n = 0;
    assert_int_equal(test_command(&dev, req, len, 0, NULL, &n), status);
    assert_int_equal(n, 3);
    test_assert_same_state(&dev, &before);
}

static void expect_ok(const uint8_t *req, size_t len)
{
    size_t n = 0;
    assert_int_equal(test_command(&dev, req, len, 0, NULL, &n), OK);
    assert_int_equal(n, 3);
}

static void push_samples(hip_device *d, uint32_t n)
{
    const int16_t v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (uint32_t i = 0; i < n; i++) {
        (void)hip_fifo_push(&d->fifo, i, v, 9);
    }
}

/* ---- defaults, config, scales ------------------------------------------------------- */

static void defaults(void **state)
{
    (void)state;
    memset(&dev, 0xA5, sizeof dev);
    hip_device_init(&dev);
    assert_int_equal(dev.rate_hz, 208);
    assert_int_equal(dev.acc_range_g, 8);
    assert_int_equal(dev.gyr_range_dps, 1000);
    assert_false(dev.mag_enabled);
    assert_int_equal(dev.att_mtu, 23);
    assert_false(dev.streaming);
    assert_int_equal(dev.seq, 0);
    assert_int_equal(dev.identify_seconds, 0);
    assert_int_equal(dev.imu_part, 1);
    assert_int_equal(dev.mag_part, 0);
    assert_false(dev.imu_ok);
    assert_false(dev.mag_ok);
    assert_int_equal(hip_fifo_count(&dev.fifo), 0);
    assert_int_equal(dev.fifo.dropped_total, 0);
    hip_device_init(NULL); /* harmless */
}

static void config_byte_by_byte(void **state)
{
    (void)state;
    test_device_ready(&dev, 247);
    const uint8_t id[8] = {0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18}; /* "a1b2c3d4e5f60718" */
    memcpy(dev.device_id, id, sizeof id);
    dev.fw_version[0] = 1;
    dev.fw_version[1] = 2;
    dev.fw_version[2] = 3;
    dev.charging = true;
    dev.battery_percent = 87;
    const uint8_t expected[40] = {
        0x01,                                           /* protocol_version */
        0x01, 0x02, 0x03,                               /* firmware 1.2.3 */
        0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18, /* device_id */
        0x01,                                           /* imu_part LSM6DS3TR-C */
        0x01,                                           /* mag_part LIS3MDL */
        0x40, 0x51,                                     /* 20800 centi-Hz */
        0x08,                                           /* +-8 g */
        0x00,                                           /* mag disabled */
        0xE8, 0x03,                                     /* 1000 dps */
        0xE7, 0xD0, 0x1C, 0x3B,                         /* 0.244e-3 x 9.80665 = 0.0023928226 */
        0x79, 0x22, 0x20, 0x3A,                         /* 35e-3 x pi / 180 = 0.00061086525 */
        0x4F, 0x76, 0x6F, 0x3C,                         /* 100 / 6842 = 0.014615609 */
        0xF7, 0x00,                                     /* MTU 247 */
        0x00,                                           /* idle */
        0x57,                                           /* 87 % */
        0x07, 0x00, 0x00, 0x00,                         /* IMU found, mag found, charging */
    };
    uint8_t out[48];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(hip_encode_config(&dev, out, sizeof out), HIP_CONFIG_SIZE);
    assert_memory_equal(out, expected, sizeof expected);
    assert_int_equal(out[40], 0xEE);
}

static void config_follows_state(void **state)
{
    (void)state;
    uint8_t out[40];
    hip_device_init(&dev);
    assert_int_equal(hip_encode_config(&dev, out, 39), 0);
    assert_int_equal(hip_encode_config(NULL, out, 40), 0);
    assert_int_equal(hip_encode_config(&dev, NULL, 40), 0);
    assert_int_equal(hip_encode_config(&dev, out, 40), 40);
    assert_int_equal(rd_u32(&out[36]), 0);   /* nothing found yet */
    assert_int_equal(rd_f32(&out[28]), 0);   /* no magnetometer: mag_scale 0 */
    assert_int_equal(out[13], 0);

    const uint8_t rates[3] = {52, 104, 208};
    for (size_t i = 0; i < 3; i++) {
        dev.rate_hz = rates[i];
        assert_int_equal(hip_encode_config(&dev, out, 40), 40);
        assert_int_equal(rd_u16(&out[14]), rates[i] * 100u);
    }
    dev.acc_range_g = 16;
    dev.gyr_range_dps = 2000;
    dev.mag_part = 2;
    dev.mag_enabled = true;
    dev.streaming = true;
    dev.imu_ok = true;
    dev.att_mtu = 185;
    assert_int_equal(hip_encode_config(&dev, out, 40), 40);
    assert_int_equal(out[16], 16);
    assert_int_equal(out[17], 1);
    assert_int_equal(rd_u16(&out[18]), 2000);
    assert_true(rd_f32(&out[20]) == hip_acc_scale_m_s2(16));
    assert_true(rd_f32(&out[24]) == hip_gyr_scale_rad_s(2000));
    assert_true(rd_f32(&out[28]) == 0.15f);
    assert_int_equal(rd_u16(&out[32]), 185);
    assert_int_equal(out[34], 1);
    assert_int_equal(rd_u32(&out[36]), 1);
}

/* Datasheet sensitivities: mg/LSB x 9.80665e-3, mdps/LSB x pi / 180e3. */
static void scales(void **state)
{
    (void)state;
    const struct { uint8_t g; float m_s2; } acc[4] = {
        {2, 5.98205650e-4f}, {4, 1.19641130e-3f}, {8, 2.39282260e-3f}, {16, 4.78564520e-3f}};
    for (size_t i = 0; i < 4; i++) {
        assert_float_equal(hip_acc_scale_m_s2(acc[i].g), acc[i].m_s2, acc[i].m_s2 * 2e-7f);
    }
    const struct { uint16_t dps; float rad_s; } gyr[5] = {
        {125, 7.63581548e-5f}, {250, 1.52716310e-4f}, {500, 3.05432619e-4f},
        {1000, 6.10865238e-4f}, {2000, 1.22173048e-3f}};
    for (size_t i = 0; i < 5; i++) {
        assert_float_equal(hip_gyr_scale_rad_s(gyr[i].dps), gyr[i].rad_s, gyr[i].rad_s * 2e-7f);
    }
    assert_float_equal(hip_mag_scale_uT(1), 0.0146156095f, 3e-9f);
    assert_float_equal(hip_mag_scale_uT(2), 0.15f, 0.0f);
    const uint8_t bad_g[5] = {0, 1, 3, 32, 255};
    for (size_t i = 0; i < 5; i++) {
        assert_true(hip_acc_scale_m_s2(bad_g[i]) == 0.0f);
    }
    const uint16_t bad_dps[5] = {0, 124, 245, 4000, 0xFFFF};
    for (size_t i = 0; i < 5; i++) {
        assert_true(hip_gyr_scale_rad_s(bad_dps[i]) == 0.0f);
    }
    assert_true(hip_mag_scale_uT(0) == 0.0f);
    assert_float_equal(hip_mag_scale_uT(3), 0.3f, 0.0f);
    assert_true(hip_mag_scale_uT(4) == 0.0f);
}

/* ---- START / STOP ------------------------------------------------------------------- */

static void start_and_stop(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    push_samples(&dev, 300); /* stale samples and drops from before */
    dev.seq = 9;
    dev.identify_seconds = 0;
    const uint8_t start[2] = {0x01, 0x42};
    const uint8_t stop[2] = {0x02, 0x43};
    uint8_t resp[16];
    size_t n;
    assert_int_equal(test_command(&dev, start, 2, 0, resp, &n), OK);
    const uint8_t expected[3] = {0x81, 0x42, 0x00};
    assert_int_equal(n, 3);
    assert_memory_equal(resp, expected, 3);
    assert_true(dev.streaming);
    assert_int_equal(dev.seq, 0);                  /* restarts at 0 */
    assert_int_equal(hip_fifo_count(&dev.fifo), 0); /* a fresh FIFO */
    assert_int_equal(dev.fifo.dropped_total, 0);

    dev.seq = 5;
    push_samples(&dev, 3);
    expect_ok(start, 2); /* START while streaming: OK, nothing changes */
    assert_true(dev.streaming);
    assert_int_equal(dev.seq, 5);
    assert_int_equal(hip_fifo_count(&dev.fifo), 3);

    assert_int_equal(test_command(&dev, stop, 2, 0, resp, &n), OK);
    const uint8_t expected_stop[3] = {0x82, 0x43, 0x00};
    assert_memory_equal(resp, expected_stop, 3);
    assert_false(dev.streaming);
    expect_ok(stop, 2); /* STOP while idle: OK */
    assert_false(dev.streaming);
}

static void start_needs_the_sensors(void **state)
{
    (void)state;
    const uint8_t start[2] = {0x01, 0x00};
    test_device_ready(&dev, 247);
    dev.imu_ok = false;
    expect_error(start, 2, NO_SENSOR);
    dev.imu_ok = true;
    dev.mag_enabled = true;
    dev.mag_ok = false; /* the magnetometer stopped answering after SET_MAG 1 */
    expect_error(start, 2, NO_SENSOR);
    dev.mag_ok = true;
    expect_ok(start, 2);
    assert_true(dev.streaming);
}

static void start_9d_needs_mtu_29(void **state)
{
    (void)state;
    const uint8_t start[2] = {0x01, 0x07};
    const uint8_t mag_on[3] = {0x08, 0x01, 0x01};
    for (uint16_t mtu = 23; mtu <= 247; mtu++) {
        test_device_ready(&dev, mtu);
        expect_ok(mag_on, 3); /* allowed at any MTU: only START checks */
        if (mtu < 29) {
            expect_error(start, 2, MTU_TOO_SMALL);
        } else {
            expect_ok(start, 2);
            assert_true(dev.streaming);
        }
    }
    /* 6D at the smallest MTU */
    test_device_ready(&dev, 23);
    expect_ok(start, 2);
    /* an impossible MTU under 23 is refused too */
    test_device_ready(&dev, 22);
    expect_error(start, 2, MTU_TOO_SMALL);
    /* a missing sensor is reported before the MTU */
    test_device_ready(&dev, 23);
    dev.mag_enabled = true;
    dev.mag_ok = false;
    expect_error(start, 2, NO_SENSOR);
}

/* ---- settings --------------------------------------------------------------------- */

static void set_rate(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    const uint16_t good[3] = {52, 104, 208};
    for (size_t i = 0; i < 3; i++) {
        const uint8_t req[4] = {0x03, (uint8_t)i, (uint8_t)(good[i] & 0xFF), (uint8_t)(good[i] >> 8)};
        expect_ok(req, 4);
        assert_int_equal(dev.rate_hz, good[i]);
    }
    const uint16_t bad[9] = {0, 1, 51, 53, 100, 200, 416, 208 + 256, 0xFFFF};
    for (size_t i = 0; i < 9; i++) {
        const uint8_t req[4] = {0x03, 0x10, (uint8_t)(bad[i] & 0xFF), (uint8_t)(bad[i] >> 8)};
        expect_error(req, 4, BAD_VALUE);
    }
    const uint8_t start[2] = {0x01, 0};
    expect_ok(start, 2);
    const uint8_t req[4] = {0x03, 0x11, 104, 0};
    expect_error(req, 4, BUSY);
    const uint8_t bad_req[4] = {0x03, 0x11, 105, 0};
    expect_error(bad_req, 4, BAD_VALUE); /* a malformed request: the same answer in every state */
}

static void set_ranges(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    const uint8_t acc[4] = {2, 4, 8, 16};
    const uint16_t gyr[5] = {125, 250, 500, 1000, 2000};
    for (size_t a = 0; a < 4; a++) {
        for (size_t g = 0; g < 5; g++) {
            const uint8_t req[5] = {0x04, 0x20, acc[a], (uint8_t)(gyr[g] & 0xFF), (uint8_t)(gyr[g] >> 8)};
            expect_ok(req, 5);
            assert_int_equal(dev.acc_range_g, acc[a]);
            assert_int_equal(dev.gyr_range_dps, gyr[g]);
        }
    }
    const uint8_t bad_acc[6] = {0, 1, 3, 6, 32, 255};
    for (size_t i = 0; i < 6; i++) {
        const uint8_t req[5] = {0x04, 0x21, bad_acc[i], 0xE8, 0x03}; /* gyr fine */
        expect_error(req, 5, BAD_VALUE);
    }
    const uint16_t bad_gyr[7] = {0, 124, 126, 245, 1000 + 256, 4000, 0xFFFF};
    for (size_t i = 0; i < 7; i++) {
        const uint8_t req[5] = {0x04, 0x22, 4, (uint8_t)(bad_gyr[i] & 0xFF), (uint8_t)(bad_gyr[i] >> 8)};
        expect_error(req, 5, BAD_VALUE); /* acc fine: neither changes */
    }
    const uint8_t start[2] = {0x01, 0};
    expect_ok(start, 2);
    const uint8_t req[5] = {0x04, 0x23, 2, 0xD0, 0x07};
    expect_error(req, 5, BUSY);
}

static void set_mag(void **state)
{
    (void)state;
    test_device_ready(&dev, 247);
    dev.mag_ok = false;
    const uint8_t on[3] = {0x08, 0x30, 1};
    const uint8_t off[3] = {0x08, 0x31, 0};
    expect_error(on, 3, NO_SENSOR);
    expect_ok(off, 3); /* disabling needs no sensor */
    assert_false(dev.mag_enabled);
    dev.mag_ok = true;
    expect_ok(on, 3);
    assert_true(dev.mag_enabled);
    for (unsigned v = 2; v <= 255; v++) {
        const uint8_t req[3] = {0x08, 0x32, (uint8_t)v};
        expect_error(req, 3, BAD_VALUE);
    }
    const uint8_t start[2] = {0x01, 0};
    expect_ok(start, 2);
    expect_error(off, 3, BUSY);
    expect_error(on, 3, BUSY);
    dev.mag_ok = false;
    expect_error(on, 3, BUSY); /* busy is checked before the sensor */
}

static void identify(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    for (unsigned s = 1; s <= 30; s++) {
        const uint8_t req[3] = {0x05, 0x40, (uint8_t)s};
        expect_ok(req, 3);
        assert_int_equal(dev.identify_seconds, s);
    }
    const uint8_t zero[3] = {0x05, 0x41, 0};
    expect_error(zero, 3, BAD_VALUE);
    for (unsigned s = 31; s <= 255; s++) {
        const uint8_t req[3] = {0x05, 0x42, (uint8_t)s};
        expect_error(req, 3, BAD_VALUE);
    }
    const uint8_t start[2] = {0x01, 0};
    expect_ok(start, 2);
    const uint8_t req[3] = {0x05, 0x43, 7};
    expect_ok(req, 3); /* allowed while streaming */
    assert_int_equal(dev.identify_seconds, 7);
}

/* ---- commands with a payload -------------------------------------------------------- */

static void time_sync(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    const uint8_t req[6] = {0x06, 0x99, 0xEF, 0xBE, 0xAD, 0xDE};
    uint8_t resp[16];
    size_t n;
    before = dev;
    assert_int_equal(test_command(&dev, req, 6, 0x123456789ull, resp, &n), OK);
    const uint8_t expected[11] = {0x86, 0x99, 0x00, 0xEF, 0xBE, 0xAD, 0xDE, 0x89, 0x67, 0x45, 0x23};
    assert_int_equal(n, 11);
    assert_memory_equal(resp, expected, 11);
    test_assert_same_state(&dev, &before);
    /* while streaming too */
    const uint8_t start[2] = {0x01, 0};
    expect_ok(start, 2);
    assert_int_equal(test_command(&dev, req, 6, 5, resp, &n), OK);
    assert_int_equal(n, 11);
    assert_int_equal(rd_u32(&resp[7]), 5);
}

static void reset_dropped(void **state)
{
    (void)state;
    test_device_ready(&dev, 247);
    const uint8_t start[2] = {0x01, 0};
    expect_ok(start, 2);
    push_samples(&dev, HIP_FIFO_CAPACITY + 0x1234); /* 0x1234 dropped */
    dev.seq = 77;
    const uint8_t req[2] = {0x07, 0x55};
    uint8_t resp[16];
    size_t n;
    assert_int_equal(test_command(&dev, req, 2, 0, resp, &n), OK);
    const uint8_t expected[7] = {0x87, 0x55, 0x00, 0x34, 0x12, 0x00, 0x00};
    assert_int_equal(n, 7);
    assert_memory_equal(resp, expected, 7);
    assert_int_equal(dev.fifo.dropped_total, 0);
    assert_int_equal(dev.seq, 0);
    assert_true(dev.streaming);
    /* the gap itself still reaches the host with the next sample */
    assert_int_equal(dev.fifo.pending_drops, 0x1234);
    assert_int_equal(hip_fifo_count(&dev.fifo), HIP_FIFO_CAPACITY);
    assert_int_equal(test_command(&dev, req, 2, 0, resp, &n), OK);
    assert_int_equal(n, 7);
    assert_int_equal(rd_u32(&resp[3]), 0);
}

/* ---- malformed requests ------------------------------------------------------------- */

static void empty_write(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    uint8_t resp[16];
    before = dev;
    assert_int_equal(hip_handle_command(&dev, (const uint8_t *)"", 0, 0, resp, sizeof resp), 3);
    const uint8_t expected[3] = {0x80, 0x00, 0x02};
    assert_memory_equal(resp, expected, 3);
    assert_int_equal(hip_handle_command(&dev, NULL, 0, 0, resp, sizeof resp), 3);
    assert_memory_equal(resp, expected, 3);
    assert_int_equal(hip_handle_command(&dev, NULL, 5, 0, resp, sizeof resp), 3); /* NULL: empty */
    assert_memory_equal(resp, expected, 3);
    test_assert_same_state(&dev, &before);
}

static void bad_lengths(void **state)
{
    (void)state;
    uint8_t req[16];
    for (uint8_t op = 1; op <= 8; op++) {
        for (size_t len = 1; len <= sizeof req; len++) {
            if (len == request_size[op]) {
                continue;
            }
            test_device_ready(&dev, 247);
            for (size_t i = 0; i < sizeof req; i++) {
                req[i] = (uint8_t)(i == 0 ? op : 1u); /* plausible arguments (1 s, mag on...) */
            }
            req[1] = 0x77;
            expect_error(req, len, BAD_LENGTH);
            /* the same while streaming */
            dev.streaming = true;
            expect_error(req, len, BAD_LENGTH);
        }
    }
}

static void unknown_opcodes(void **state)
{
    (void)state;
    test_device_ready(&dev, 247);
    uint8_t req[8] = {0, 0x5C, 1, 2, 3, 4, 5, 6};
    for (unsigned op = 0; op <= 255; op++) {
        if (op >= 1 && op <= 8) {
            continue;
        }
        req[0] = (uint8_t)op;
        for (size_t len = 1; len <= sizeof req; len++) {
            uint8_t resp[16];
            size_t n;
            before = dev;
            assert_int_equal(test_command(&dev, req, len, 0, resp, &n), UNKNOWN_OPCODE);
            assert_int_equal(n, 3);
            assert_int_equal(resp[0], 0x80u | op); /* 0x80 | opcode of what was sent */
            test_assert_same_state(&dev, &before);
        }
    }
}

static void a_response_buffer_too_small_does_nothing(void **state)
{
    (void)state;
    test_device_ready(&dev, 23);
    const uint8_t start[2] = {0x01, 0};
    uint8_t resp[16];
    before = dev;
    assert_int_equal(hip_handle_command(&dev, start, 2, 0, resp, HIP_RESPONSE_MAX - 1u), 0);
    assert_int_equal(hip_handle_command(&dev, start, 2, 0, NULL, sizeof resp), 0);
    assert_int_equal(hip_handle_command(NULL, start, 2, 0, resp, sizeof resp), 0);
    test_assert_same_state(&dev, &before);
    assert_int_equal(hip_handle_command(&dev, start, 2, 0, resp, HIP_RESPONSE_MAX), 3);
    assert_true(dev.streaming);
}

/* Picks one of: random bytes of a random length, a known opcode at a random
 * length, at its length with random arguments, or with mostly valid ones. */
static void random_request(uint8_t *req, size_t cap, size_t *len)
{
    static const uint16_t rates[5] = {52, 104, 208, 0, 53};
    static const uint8_t accs[5] = {2, 4, 8, 16, 3};
    static const uint16_t gyrs[6] = {125, 250, 500, 1000, 2000, 100};
    for (size_t i = 0; i < cap; i++) {
        req[i] = (uint8_t)test_rng();
    }
    const uint32_t mode = test_rng_below(4);
    const uint8_t op = (uint8_t)(1u + test_rng_below(8));
    if (mode == 0u) {
        *len = test_rng_below((uint32_t)cap + 1u);
        return;
    }
    req[0] = op;
    if (mode == 1u) {
        *len = 1u + test_rng_below((uint32_t)cap);
        return;
    }
    *len = request_size[op];
    if (mode == 2u) {
        return;
    }
    uint16_t v16;
    switch (op) {
    case 0x03:
        v16 = rates[test_rng_below(5)];
        req[2] = (uint8_t)(v16 & 0xFFu);
        req[3] = (uint8_t)(v16 >> 8);
        break;
    case 0x04:
        req[2] = accs[test_rng_below(5)];
        v16 = gyrs[test_rng_below(6)];
        req[3] = (uint8_t)(v16 & 0xFFu);
        req[4] = (uint8_t)(v16 >> 8);
        break;
    case 0x05:
        req[2] = (uint8_t)test_rng_below(32);
        break;
    case 0x08:
        req[2] = (uint8_t)test_rng_below(3);
        break;
    default:
        break;
    }
}

/* Random requests in random states: one well-formed response each, settings
 * always valid, failed commands change nothing (sanitizers watch the memory). */
static void fuzz_random_requests(void **state)
{
    (void)state;
    test_rng_seed(2024);
    test_device_ready(&dev, 23);
    unsigned count[7] = {0};
    for (uint32_t iter = 0; iter < 200000u; iter++) {
        uint8_t req[24];
        size_t len;
        random_request(req, sizeof req, &len);
        if (test_rng_below(64) == 0) { /* shake the environment */
            dev.imu_ok = test_rng_below(4) != 0;
            dev.mag_ok = test_rng_below(2) != 0;
            dev.att_mtu = (uint16_t)(20u + test_rng_below(240));
        }
        before = dev;
        uint8_t resp[16];
        size_t n;
        const uint8_t status = test_command(&dev, req, len, test_rng(), resp, &n);
        count[status]++;
        if (status != OK) {
            assert_int_equal(n, 3);
            test_assert_same_state(&dev, &before);
        } else {
            assert_int_equal(n, req[0] == 0x06 ? 11u : req[0] == 0x07 ? 7u : 3u);
        }
        assert_true(dev.rate_hz == 52 || dev.rate_hz == 104 || dev.rate_hz == 208);
        assert_true(hip_acc_scale_m_s2(dev.acc_range_g) > 0.0f);
        assert_true(hip_gyr_scale_rad_s(dev.gyr_range_dps) > 0.0f);
        assert_true(dev.identify_seconds <= 30);
        assert_true(!dev.mag_enabled || before.mag_enabled || dev.mag_ok);
        if (dev.streaming && !before.streaming) {
            assert_true(hip_samples_per_packet(dev.att_mtu, dev.mag_enabled) > 0u);
        }
    }
    for (size_t s = 0; s < 7; s++) {
        if (count[s] <= 100u) {
            print_message("status %u reached only %u times\n", (unsigned)s, count[s]);
        }
        assert_true(count[s] > 100u); /* every status was reached */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(config_byte_by_byte),
        cmocka_unit_test(config_follows_state),
        cmocka_unit_test(scales),
        cmocka_unit_test(start_and_stop),
        cmocka_unit_test(start_needs_the_sensors),
        cmocka_unit_test(start_9d_needs_mtu_29),
        cmocka_unit_test(set_rate),
        cmocka_unit_test(set_ranges),
        cmocka_unit_test(set_mag),
        cmocka_unit_test(identify),
        cmocka_unit_test(time_sync),
        cmocka_unit_test(reset_dropped),
        cmocka_unit_test(empty_write),
        cmocka_unit_test(bad_lengths),
        cmocka_unit_test(unknown_opcodes),
        cmocka_unit_test(a_response_buffer_too_small_does_nothing),
        cmocka_unit_test(fuzz_random_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
