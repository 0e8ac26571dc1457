/* Batcher: FIFO -> packets at the MTU, drop splitting, latency
 * (PROTOCOL.md, "Batching and the MTU"). */
#include "test_util.h"

#define PERIOD_208_HZ_US 4808u

static hip_device dev;                     /* 8 KiB: static, not on the stack */
static uint32_t period_us = PERIOD_208_HZ_US; /* between samples; streaming() resets it */

/* Sample k carries k in its values, so a decoded packet tells which it holds. */
static void sample_values(uint32_t k, int16_t v[9])
{
    v[0] = (int16_t)(uint16_t)(k & 0xFFFFu);
    v[1] = (int16_t)(uint16_t)(k >> 16);
    v[2] = -1000;
    v[3] = 1;
    v[4] = -2;
    v[5] = 32767;
    v[6] = -32768;
    v[7] = 7;
    v[8] = (int16_t)(uint16_t)(~k & 0xFFFFu);
}

static uint32_t sample_index(const test_packet *p, size_t i)
{
    return (uint32_t)(uint16_t)p->v[i][0] | ((uint32_t)(uint16_t)p->v[i][1] << 16);
}

static uint64_t sample_time(uint32_t k)
{
    return 1000000u + (uint64_t)k * period_us;
}

static bool push(uint32_t k)
{
    int16_t v[9];
    sample_values(k, v);
    return hip_fifo_push(&dev.fifo, sample_time(k), v, dev.mag_enabled ? 9u : 6u);
}

static void streaming(uint16_t mtu, bool mag)
{
    period_us = PERIOD_208_HZ_US;
    test_device_ready(&dev, mtu);
    dev.mag_enabled = mag;
    const uint8_t start[2] = {0x01, 0};
    assert_int_equal(test_command(&dev, start, 2, 0, NULL, NULL), 0);
}

static size_t next(uint64_t now_us, uint8_t *out, test_packet *p)
{
    memset(out, 0xEE, HIP_PACKET_MAX + 4u);
    const size_t len = hip_next_packet(&dev, now_us, out, HIP_PACKET_MAX);
    assert_int_equal(out[HIP_PACKET_MAX], 0xEE);
    if (len > 0u) {
        assert_true(len <= (size_t)dev.att_mtu - 3u);
        assert_true(test_decode_packet(out, len, p));
    }
    return len;
}

static void nothing_when_idle_or_empty(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(247, false);
    assert_int_equal(next(sample_time(1000), out, &p), 0); /* empty */
    for (uint32_t k = 0; k < 100; k++) {
        assert_true(push(k));
    }
    const uint8_t stop[2] = {0x02, 0};
    assert_int_equal(test_command(&dev, stop, 2, 0, NULL, NULL), 0);
    assert_int_equal(next(sample_time(1000), out, &p), 0); /* idle: nothing, nothing popped */
    assert_int_equal(hip_fifo_count(&dev.fifo), 100);
    assert_int_equal(dev.seq, 0);
    assert_int_equal(hip_next_packet(NULL, 0, out, sizeof out), 0);
    assert_int_equal(hip_next_packet(&dev, 0, NULL, sizeof out), 0);
}

static void full_packet_byte_by_byte(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(247, false);
    period_us = 2000; /* 19 samples in 36 ms */
    for (uint32_t k = 0; k < 18; k++) {
        assert_true(push(k));
        assert_int_equal(next(sample_time(0), out, &p), 0); /* not full, not late */
    }
    assert_true(push(18));
    assert_int_equal(next(sample_time(0), out, &p), 236); /* 8 + 19 x 12 */
    const uint8_t header[8] = {0x10, 19, 0, 0, 0x40, 0x42, 0x0F, 0x00}; /* t0 = 1000000 */
    assert_memory_equal(out, header, 8);
    const uint8_t sample5[12] = {5, 0, 0, 0, 0x18, 0xFC, 1, 0, 0xFE, 0xFF, 0xFF, 0x7F};
    assert_memory_equal(&out[8 + 5 * 12], sample5, 12);
    for (size_t i = 0; i < 19; i++) {
        assert_int_equal(sample_index(&p, i), i);
    }
    assert_int_equal(hip_fifo_count(&dev.fifo), 0);
    assert_int_equal(dev.seq, 1);
    assert_int_equal(next(sample_time(18), out, &p), 0);
}

static void full_9d_packets(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(185, true);
    for (uint32_t k = 0; k < 20; k++) {
        assert_true(push(k));
    }
    assert_int_equal(next(sample_time(19), out, &p), 8 + 9 * 18);
    assert_int_equal(out[0], 0x11);
    assert_true(p.with_mag);
    assert_int_equal(p.count, 9);
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(sample_index(&p, i), i);
        assert_int_equal((uint16_t)p.v[i][8], (uint16_t)~i);
        assert_int_equal(p.v[i][6], -32768);
    }
    assert_int_equal(next(sample_time(19), out, &p), 8 + 9 * 18);
    assert_int_equal(p.seq, 1);
    assert_int_equal(sample_index(&p, 0), 9);
    assert_int_equal(next(sample_time(19), out, &p), 0); /* 2 left, 9.6 ms old */
    assert_int_equal(hip_fifo_count(&dev.fifo), 2);
}

static void partial_packet_after_50_ms(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(247, false);
    assert_true(push(0));
    assert_true(push(1));
    const uint64_t t0 = sample_time(0);
    assert_int_equal(next(t0 + 49999u, out, &p), 0);
    assert_int_equal(next(t0 - 1u, out, &p), 0); /* a clock behind the sample: not late */
    assert_int_equal(next(t0 + 50000u, out, &p), 8 + 2 * 12);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.t0_us, (uint32_t)t0);
    assert_int_equal(next(t0 + 50000u, out, &p), 0);
    /* one sample at MTU 23 is already a full packet */
    streaming(23, false);
    assert_true(push(0));
    assert_int_equal(next(sample_time(0), out, &p), 20);
}

/* At 208 Hz the 50 ms bound, not the MTU, sets the packet size: 19 samples
 * span 87 ms; samples 0..10 span 48.1 ms, sample 11 (52.9 ms) opens the next
 * packet. 11 samples a packet, 18.9 packets/s, whenever the batcher runs. */
static void at_208_hz_the_50_ms_window_limits_the_packet(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    for (uint32_t every = 1; every <= 9; every += 4) { /* batcher after every 1st, 5th, 9th sample */
        streaming(247, false);
        uint32_t packets = 0;
        for (uint32_t k = 0; k < 208 * 10; k++) {
            assert_true(push(k));
            if (k % every != 0u) {
                continue;
            }
            while (next(sample_time(k), out, &p) > 0u) {
                assert_int_equal(p.count, 11);
                assert_int_equal(sample_index(&p, 0), packets * 11u);
                packets++;
            }
        }
        assert_in_range(packets, 188, 189); /* 10 s: 2080 samples / 11 */
    }
    /* 9D: 13 would fit MTU 247, 11 are sent */
    streaming(247, true);
    for (uint32_t k = 0; k < 12; k++) {
        assert_true(push(k));
    }
    assert_int_equal(next(sample_time(11), out, &p), 8 + 11 * 18);
    /* 104 Hz (9615 us): 6 samples span 48.1 ms */
    streaming(247, false);
    period_us = 9615;
    for (uint32_t k = 0; k < 7; k++) {
        assert_true(push(k));
    }
    assert_int_equal(next(sample_time(6), out, &p), 8 + 6 * 12);
}

/* FIFO full, then 5 samples lost: the packet before the gap ends there, the
 * next one reports the 5 in `dropped`. */
static void a_drop_ends_the_packet(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(247, false);
    period_us = 1000; /* 19 samples in 18 ms */
    for (uint32_t k = 0; k < HIP_FIFO_CAPACITY; k++) {
        assert_true(push(k));
    }
    for (uint32_t k = HIP_FIFO_CAPACITY; k < HIP_FIFO_CAPACITY + 5; k++) {
        assert_false(push(k));
    }
    uint64_t now = sample_time(HIP_FIFO_CAPACITY + 5);
    for (uint32_t i = 0; i < 13; i++) { /* 13 x 19 = 247 of the 256 */
        assert_int_equal(next(now, out, &p), 236);
        assert_int_equal(p.dropped, 0);
        assert_int_equal(sample_index(&p, 0), i * 19);
    }
    assert_true(push(261)); /* after the gap: 256..260 lost */
    assert_int_equal(next(now, out, &p), 8 + 9 * 12); /* ends at the drop, not late */
    assert_int_equal(p.count, 9);
    assert_int_equal(p.dropped, 0);
    assert_int_equal(sample_index(&p, 8), 255);
    assert_int_equal(next(now, out, &p), 0); /* 261 alone: waits */
    for (uint32_t k = 262; k < 262 + 18; k++) {
        assert_true(push(k));
    }
    assert_int_equal(next(now, out, &p), 236);
    assert_int_equal(p.dropped, 5);
    assert_int_equal(sample_index(&p, 0), 261);
    assert_int_equal(p.t0_us, (uint32_t)sample_time(261));
    assert_int_equal(p.seq, 14);
    assert_int_equal(dev.fifo.dropped_total, 5);
}

static void a_drop_before_a_lone_sample_and_saturation(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(247, false);
    for (uint32_t k = 0; k < HIP_FIFO_CAPACITY; k++) {
        assert_true(push(k));
    }
    for (uint32_t k = HIP_FIFO_CAPACITY; k < HIP_FIFO_CAPACITY + 300; k++) {
        assert_false(push(k)); /* 256..555 lost */
    }
    hip_fifo_pop(&dev.fifo, HIP_FIFO_CAPACITY - 1); /* keep sample 255 only */
    assert_true(push(556));
    assert_true(push(557));
    const uint64_t now = sample_time(557);
    assert_int_equal(next(now, out, &p), 20); /* 255 alone: 556 follows a gap */
    assert_int_equal(sample_index(&p, 0), 255);
    assert_int_equal(p.dropped, 0);
    assert_int_equal(next(now, out, &p), 0);  /* 556, 557: neither full nor late */
    assert_int_equal(next(sample_time(556) + 50000u, out, &p), 32);
    assert_int_equal(p.dropped, 255);         /* 300 lost: saturated */
    assert_int_equal(sample_index(&p, 0), 556);
    assert_int_equal(sample_index(&p, 1), 557);
    assert_int_equal(dev.fifo.dropped_total, 300);
}

static void t0_is_the_low_32_bits(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(23, false);
    const int16_t v[6] = {0};
    assert_true(hip_fifo_push(&dev.fifo, 0x100000005ull, v, 6));
    assert_true(hip_fifo_push(&dev.fifo, 0xFFFFFFFFFFFFFFFFull, v, 6));
    assert_int_equal(next(0, out, &p), 20); /* full at MTU 23 */
    assert_int_equal(p.t0_us, 5);
    assert_int_equal(next(0, out, &p), 20);
    assert_int_equal(p.t0_us, 0xFFFFFFFFu);
}

static void seq_wraps(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(23, false);
    for (uint32_t k = 0; k < 600; k++) {
        assert_true(push(k));
        assert_int_equal(next(sample_time(k), out, &p), 20);
        assert_int_equal(p.seq, k & 0xFFu);
        assert_int_equal(sample_index(&p, 0), k);
    }
    /* RESET_DROPPED restarts it */
    const uint8_t reset[2] = {0x07, 0};
    assert_int_equal(test_command(&dev, reset, 2, 0, NULL, NULL), 0);
    assert_true(push(600));
    assert_int_equal(next(sample_time(600), out, &p), 20);
    assert_int_equal(p.seq, 0);
}

static void follows_an_mtu_change(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    streaming(23, false);
    period_us = 1000;
    for (uint32_t k = 0; k < 40; k++) {
        assert_true(push(k));
    }
    assert_int_equal(next(sample_time(40), out, &p), 20);
    dev.att_mtu = 185; /* the exchange finished after START */
    assert_int_equal(next(sample_time(40), out, &p), 8 + 14 * 12);
    assert_int_equal(sample_index(&p, 0), 1);
    assert_int_equal(p.seq, 1);
}

static void out_too_small_keeps_the_samples(void **state)
{
    (void)state;
    uint8_t out[HIP_PACKET_MAX];
    streaming(247, false);
    period_us = 1000;
    for (uint32_t k = 0; k < 19; k++) {
        assert_true(push(k));
    }
    assert_int_equal(hip_next_packet(&dev, sample_time(19), out, 235), 0);
    assert_int_equal(hip_fifo_count(&dev.fifo), 19);
    assert_int_equal(dev.seq, 0);
    assert_int_equal(hip_next_packet(&dev, sample_time(19), out, 236), 236);
}

/* A sample stream with a radio that stalls at random. */
typedef struct {
    bool mag;
    uint8_t per_packet;
    uint32_t expected_next; /* the next sample index the host should see */
    uint32_t received;
    uint32_t dropped;       /* as the host counts them, from the gaps */
    uint8_t expected_seq;
    uint32_t packets_by_reason[4]; /* full, at a drop, at the 50 ms window, late */
} stream_host;

/* Runs the batcher until nothing is due at `now` or `limit` packets are out
 * (the radio takes only so many), checking every packet as the host would. */
static void drain(stream_host *h, uint64_t now, uint32_t limit)
{
    uint8_t out[HIP_PACKET_MAX + 4];
    test_packet p;
    uint32_t sent = 0;
    while (sent < limit && next(now, out, &p) > 0u) {
        sent++;
        assert_int_equal(p.seq, h->expected_seq);
        h->expected_seq = (uint8_t)(h->expected_seq + 1u);
        assert_int_equal(p.with_mag, h->mag);
        assert_true(p.count >= 1u && p.count <= h->per_packet);
        const uint32_t first = sample_index(&p, 0);
        assert_true(first >= h->expected_next);
        const uint32_t gap = first - h->expected_next;
        assert_int_equal(p.dropped, gap > 255u ? 255u : gap);
        h->dropped += gap;
        assert_int_equal(p.t0_us, (uint32_t)sample_time(first));
        for (size_t i = 0; i < p.count; i++) {
            assert_int_equal(sample_index(&p, i), first + i); /* consecutive */
        }
        /* it spans less than 50 ms and could not grow, or its first sample was late */
        const uint64_t span = sample_time(first + p.count - 1u) - sample_time(first);
        assert_true(span < HIP_MAX_PACKET_DELAY_US);
        const bool full = p.count == h->per_packet;
        const hip_sample *after = hip_fifo_peek(&dev.fifo, 0);
        const bool at_drop = after != NULL && after->dropped_before > 0u;
        const bool at_window = after != NULL && after->t_us - sample_time(first) >= HIP_MAX_PACKET_DELAY_US;
        const bool late = now - sample_time(first) >= HIP_MAX_PACKET_DELAY_US;
        assert_true(full || at_drop || at_window || late);
        h->packets_by_reason[full ? 0 : at_drop ? 1 : at_window ? 2 : 3]++;
        h->received += p.count;
        h->expected_next = first + p.count;
    }
    /* latency: once the batcher has run dry, no sample is 50 ms old */
    const hip_sample *oldest = hip_fifo_peek(&dev.fifo, 0);
    assert_true(sent == limit || oldest == NULL || now - oldest->t_us < HIP_MAX_PACKET_DELAY_US);
}

/* Every sample arrives in order exactly once or is reported dropped, packets
 * hold consecutive samples, seq counts packets, latency stays bounded. */
static void random_stream_property(void **state)
{
    (void)state;
    static const uint16_t mtus[6] = {23, 29, 64, 185, 247, 100};
    static const uint32_t periods[4] = {4808, 1000, 9615, 19231}; /* 208 Hz, 1 kHz, 104 Hz, 52 Hz */
    uint32_t by_reason[4] = {0};
    for (uint32_t run = 0; run < 24; run++) {
        test_rng_seed(1000u + run);
        stream_host h = {0};
        h.mag = (run % 2u) == 1u;
        streaming(mtus[run % 6u], h.mag);
        period_us = periods[run % 4u];
        h.per_packet = hip_samples_per_packet(dev.att_mtu, h.mag);
        uint32_t stall = 0;
        const uint32_t total = 30000;
        for (uint32_t k = 0; k < total; k++) {
            (void)push(k);
            if (stall > 0u) {
                stall--;
                continue;
            }
            if (test_rng_below(500) == 0) {
                stall = test_rng_below(700); /* up to 700 samples: overflows the FIFO */
            }
            const uint32_t limit = (test_rng_below(8) == 0) ? 1u + test_rng_below(3) : UINT32_MAX;
            drain(&h, sample_time(k) + test_rng_below(300), limit);
        }
        drain(&h, sample_time(total) + HIP_MAX_PACKET_DELAY_US, UINT32_MAX);
        assert_int_equal(hip_fifo_count(&dev.fifo), 0);
        /* drops after the last stored sample are still pending */
        assert_int_equal(h.received + h.dropped + dev.fifo.pending_drops, total);
        assert_int_equal(dev.fifo.dropped_total, h.dropped + dev.fifo.pending_drops);
        assert_true(h.dropped > 0u);        /* the stalls did overflow */
        assert_true(h.received > total / 2u);
        for (size_t r = 0; r < 4; r++) {
            by_reason[r] += h.packets_by_reason[r];
        }
    }
    for (size_t r = 0; r < 4; r++) {
        if (by_reason[r] <= 10u) {
            print_message("reason %u happened only %u times\n", (unsigned)r, (unsigned)by_reason[r]);
        }
        assert_true(by_reason[r] > 10u); /* every reason to send happened */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_when_idle_or_empty),
        cmocka_unit_test(full_packet_byte_by_byte),
        cmocka_unit_test(full_9d_packets),
        cmocka_unit_test(partial_packet_after_50_ms),
        cmocka_unit_test(at_208_hz_the_50_ms_window_limits_the_packet),
        cmocka_unit_test(a_drop_ends_the_packet),
        cmocka_unit_test(a_drop_before_a_lone_sample_and_saturation),
        cmocka_unit_test(t0_is_the_low_32_bits),
        cmocka_unit_test(seq_wraps),
        cmocka_unit_test(follows_an_mtu_change),
        cmocka_unit_test(out_too_small_keeps_the_samples),
        cmocka_unit_test(random_stream_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
