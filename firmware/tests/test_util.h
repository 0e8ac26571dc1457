/*
 * Helpers shared by the hipimu core tests: includes in cmocka's required
 * order, a deterministic PRNG (the same sequence on the host and on the
 * Cortex-M4F), an independent little-endian packet decoder and device set-up.
 */
#ifndef HIPIMU_TEST_UTIL_H
#define HIPIMU_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hipimu_core.h"

/* ---- PRNG: xorshift32 -------------------------------------------------------- */

static uint32_t test_rng_state = 0x12345678u;

static inline void test_rng_seed(uint32_t seed)
{
    test_rng_state = (seed == 0u) ? 1u : seed;
}

static inline uint32_t test_rng(void)
{
    uint32_t x = test_rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    test_rng_state = x;
    return x;
}

/* Uniform-ish in [0, n), n > 0. */
static inline uint32_t test_rng_below(uint32_t n)
{
    return test_rng() % n;
}

/* ---- little-endian readers, written independently of the core ------------------ */

static inline uint16_t rd_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

static inline int16_t rd_i16(const uint8_t *p)
{
    const uint16_t u = rd_u16(p);
    return (u >= 0x8000u) ? (int16_t)((int32_t)u - 0x10000) : (int16_t)u;
}

static inline uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline float rd_f32(const uint8_t *p)
{
    const uint32_t bits = rd_u32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A data packet as PROTOCOL.md defines it, decoded with its validity rules. */
typedef struct {
    uint8_t version;
    bool with_mag;
    uint8_t count;
    uint8_t seq;
    uint8_t dropped;
    uint32_t t0_us;
    int16_t v[HIP_MAX_SAMPLES_PER_PACKET][HIP_AXES_MAX];
} test_packet;

/* Returns false if the packet is malformed per PROTOCOL.md. */
static inline bool test_decode_packet(const uint8_t *p, size_t len, test_packet *out)
{
    if (len < 8u) {
        return false;
    }
    out->version = (uint8_t)(p[0] >> 4);
    out->with_mag = (p[0] & 0x01u) != 0u;
    out->count = p[1];
    out->seq = p[2];
    out->dropped = p[3];
    out->t0_us = rd_u32(&p[4]);
    const size_t axes = out->with_mag ? 9u : 6u;
    if (out->version != 1u || (p[0] & 0x0Eu) != 0u || out->count == 0u ||
        out->count > HIP_MAX_SAMPLES_PER_PACKET || len != 8u + (size_t)out->count * axes * 2u) {
        return false;
    }
    for (size_t i = 0u; i < out->count; i++) {
        for (size_t a = 0u; a < HIP_AXES_MAX; a++) {
            out->v[i][a] = (a < axes) ? rd_i16(&p[8u + (i * axes + a) * 2u]) : 0;
        }
    }
    return true;
}

/* ---- device set-up ------------------------------------------------------------ */

/* An initialised device with its IMU (and a LIS3MDL) found, at this MTU. */
static inline void test_device_ready(hip_device *d, uint16_t att_mtu)
{
    hip_device_init(d);
    d->imu_ok = true;
    d->mag_part = 1u;
    d->mag_ok = true;
    d->att_mtu = att_mtu;
}

/* Sends a request, checks the response header and returns the status. */
static inline uint8_t test_command(hip_device *d, const uint8_t *req, size_t len, uint64_t now_us,
                                   uint8_t *resp, size_t *resp_len)
{
    uint8_t buf[16];
    memset(buf, 0xEE, sizeof buf);
    const size_t n = hip_handle_command(d, req, len, now_us, buf, sizeof buf);
    assert_true(n >= 3u && n <= HIP_RESPONSE_MAX);
    assert_int_equal(buf[0], 0x80u | ((len >= 1u) ? req[0] : 0u));
    assert_int_equal(buf[1], (len >= 2u) ? req[1] : 0u);
    assert_true(buf[2] <= 6u);
    for (size_t i = n; i < sizeof buf; i++) {
        assert_int_equal(buf[i], 0xEEu); /* nothing written past the response */
    }
    if (resp != NULL) {
        memcpy(resp, buf, n);
    }
    if (resp_len != NULL) {
        *resp_len = n;
    }
    return buf[2];
}

/* Everything a command may change, compared field by field. */
static inline void test_assert_same_state(const hip_device *a, const hip_device *b)
{
    assert_memory_equal(a->device_id, b->device_id, sizeof a->device_id);
    assert_memory_equal(a->fw_version, b->fw_version, sizeof a->fw_version);
    assert_int_equal(a->imu_part, b->imu_part);
    assert_int_equal(a->mag_part, b->mag_part);
    assert_int_equal(a->imu_ok, b->imu_ok);
    assert_int_equal(a->mag_ok, b->mag_ok);
    assert_int_equal(a->charging, b->charging);
    assert_int_equal(a->battery_percent, b->battery_percent);
    assert_int_equal(a->rate_hz, b->rate_hz);
    assert_int_equal(a->acc_range_g, b->acc_range_g);
    assert_int_equal(a->gyr_range_dps, b->gyr_range_dps);
    assert_int_equal(a->mag_enabled, b->mag_enabled);
    assert_int_equal(a->att_mtu, b->att_mtu);
    assert_int_equal(a->streaming, b->streaming);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->identify_seconds, b->identify_seconds);
    assert_int_equal(a->fifo.head, b->fifo.head);
    assert_int_equal(a->fifo.count, b->fifo.count);
    assert_int_equal(a->fifo.pending_drops, b->fifo.pending_drops);
    assert_int_equal(a->fifo.dropped_total, b->fifo.dropped_total);
}

#endif /* HIPIMU_TEST_UTIL_H */
