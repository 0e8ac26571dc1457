/* Data packet encoding and samples per packet (PROTOCOL.md, "Data packets"). */
#include "test_util.h"

static void encode_6d_byte_by_byte(void **state)
{
    (void)state;
    const int16_t samples[2 * 6] = {1, -2, 3, -4, 5, -32768, 32767, 0, -1, 256, -256, 0x1234};
    const uint8_t expected[32] = {
        0x10, 0x02, 0x5A, 0x03, 0x78, 0x56, 0x34, 0x12,                         /* header */
        0x01, 0x00, 0xFE, 0xFF, 0x03, 0x00, 0xFC, 0xFF, 0x05, 0x00, 0x00, 0x80, /* sample 0 */
        0xFF, 0x7F, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x01, 0x00, 0xFF, 0x34, 0x12, /* sample 1 */
    };
    uint8_t out[40];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(hip_encode_packet(out, sizeof out, 0x5A, 3, 0x12345678u, samples, 2, false), 32);
    assert_memory_equal(out, expected, sizeof expected);
    for (size_t i = 32; i < sizeof out; i++) {
        assert_int_equal(out[i], 0xEE); /* nothing written past the packet */
    }
}

static void encode_9d_byte_by_byte(void **state)
{
    (void)state;
    const int16_t samples[9] = {1, 2, 3, 4, 5, 6, -7, -8, -9};
    const uint8_t expected[26] = {
        0x11, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, /* version 1 | mag flag, count 1 */
        0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x04, 0x00, 0x05, 0x00,
        0x06, 0x00, 0xF9, 0xFF, 0xF8, 0xFF, 0xF7, 0xFF,
    };
    uint8_t out[26];
    assert_int_equal(hip_encode_packet(out, sizeof out, 0, 255, 0xFFFFFFFFu, samples, 1, true), 26);
    assert_memory_equal(out, expected, sizeof expected);
}

static void encode_header_rules(void **state)
{
    (void)state;
    int16_t samples[HIP_MAX_SAMPLES_PER_PACKET * 9];
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        samples[i] = (int16_t)(i * 7u);
    }
    uint8_t out[8 + HIP_MAX_SAMPLES_PER_PACKET * 18];
    for (uint8_t n = 1; n <= HIP_MAX_SAMPLES_PER_PACKET; n++) {
        for (int mag = 0; mag <= 1; mag++) {
            const size_t len = hip_encode_packet(out, sizeof out, n, 0, n, samples, n, mag != 0);
            assert_int_equal(len, 8u + n * (mag ? 18u : 12u));
            test_packet p;
            assert_true(test_decode_packet(out, len, &p));
            assert_int_equal(out[0] >> 4, 1);      /* protocol version */
            assert_int_equal(out[0] & 0x0E, 0);   /* reserved bits */
            assert_int_equal(p.with_mag, mag != 0);
            assert_int_equal(p.count, n);
            for (size_t i = 0; i < n; i++) {
                for (size_t a = 0; a < (mag ? 9u : 6u); a++) {
                    assert_int_equal(p.v[i][a], samples[i * (mag ? 9u : 6u) + a]);
                }
            }
        }
    }
}

static void encode_rejects_invalid_arguments(void **state)
{
    (void)state;
    const int16_t samples[33 * 9] = {0};
    uint8_t out[8 + 33 * 18];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(hip_encode_packet(out, sizeof out, 0, 0, 0, samples, 0, false), 0);
    assert_int_equal(hip_encode_packet(out, sizeof out, 0, 0, 0, samples, 33, false), 0);
    assert_int_equal(hip_encode_packet(out, sizeof out, 0, 0, 0, samples, 255, true), 0);
    assert_int_equal(hip_encode_packet(NULL, sizeof out, 0, 0, 0, samples, 1, false), 0);
    assert_int_equal(hip_encode_packet(out, sizeof out, 0, 0, 0, NULL, 1, false), 0);
    /* capacity: one byte short fails and writes nothing, exact fits */
    assert_int_equal(hip_encode_packet(out, 19, 0, 0, 0, samples, 1, false), 0);
    assert_int_equal(hip_encode_packet(out, 25, 0, 0, 0, samples, 1, true), 0);
    assert_int_equal(hip_encode_packet(out, 0, 0, 0, 0, samples, 1, false), 0);
    for (size_t i = 0; i < sizeof out; i++) {
        assert_int_equal(out[i], 0xEE);
    }
    assert_int_equal(hip_encode_packet(out, 20, 0, 0, 0, samples, 1, false), 20);
    assert_int_equal(hip_encode_packet(out, 26, 0, 0, 0, samples, 1, true), 26);
    assert_int_equal(hip_encode_packet(out, sizeof out, 0, 0, 0, samples, 32, true), 8 + 32 * 18);
}

/* The table in PROTOCOL.md, "Batching and the MTU". */
static void samples_per_packet_protocol_table(void **state)
{
    (void)state;
    assert_int_equal(hip_samples_per_packet(23, false), 1);
    assert_int_equal(hip_samples_per_packet(23, true), 0);
    assert_int_equal(hip_samples_per_packet(28, true), 0);
    assert_int_equal(hip_samples_per_packet(29, false), 1);
    assert_int_equal(hip_samples_per_packet(29, true), 1);
    assert_int_equal(hip_samples_per_packet(185, false), 14);
    assert_int_equal(hip_samples_per_packet(185, true), 9);
    assert_int_equal(hip_samples_per_packet(247, false), 19);
    assert_int_equal(hip_samples_per_packet(247, true), 13);
    /* the budget section: 8 + 19 x 12 = 236 bytes, 8 + 13 x 18 = 242 bytes */
    assert_int_equal(8 + hip_samples_per_packet(247, false) * 12, 236);
    assert_int_equal(8 + hip_samples_per_packet(247, true) * 18, 242);
}

/* Every MTU 23..247: the largest n with 8 + n * S <= MTU - 3, at most 32, found
 * by search; the encoder agrees (n fits the payload, n + 1 does not). */
static void samples_per_packet_every_mtu(void **state)
{
    (void)state;
    static const int16_t samples[33 * 9];
    uint8_t out[8 + 33 * 18];
    for (uint16_t mtu = 23; mtu <= 247; mtu++) {
        for (int mag = 0; mag <= 1; mag++) {
            const size_t payload = (size_t)mtu - 3u;
            const size_t size = mag ? 18u : 12u;
            uint8_t n = 0;
            while (n < 32u && 8u + (n + 1u) * size <= payload) {
                n++;
            }
            assert_int_equal(hip_samples_per_packet(mtu, mag != 0), n);
            if (n > 0u) {
                assert_int_equal(hip_encode_packet(out, payload, 0, 0, 0, samples, n, mag != 0), 8u + n * size);
            }
            assert_int_equal(hip_encode_packet(out, payload, 0, 0, 0, samples, (uint8_t)(n + 1u), mag != 0), 0);
            assert_true(mag || n >= 1u);          /* 6D always fits from MTU 23 on */
            assert_true(!mag || (n >= 1u) == (mtu >= HIP_ATT_MTU_MIN_9D));
        }
    }
}

static void samples_per_packet_outside_range(void **state)
{
    (void)state;
    for (uint16_t mtu = 0; mtu < 23; mtu++) {
        assert_int_equal(hip_samples_per_packet(mtu, false), 0);
        assert_int_equal(hip_samples_per_packet(mtu, true), 0);
    }
    /* the core never builds more than HIP_PACKET_MAX bytes */
    assert_int_equal(hip_samples_per_packet(248, false), 19);
    assert_int_equal(hip_samples_per_packet(512, true), 13);
    assert_int_equal(hip_samples_per_packet(0xFFFF, false), 19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_6d_byte_by_byte),
        cmocka_unit_test(encode_9d_byte_by_byte),
        cmocka_unit_test(encode_header_rules),
        cmocka_unit_test(encode_rejects_invalid_arguments),
        cmocka_unit_test(samples_per_packet_protocol_table),
        cmocka_unit_test(samples_per_packet_every_mtu),
        cmocka_unit_test(samples_per_packet_outside_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
