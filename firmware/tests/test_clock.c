/* Device clock: 24-bit 32768 Hz RTC -> 64-bit us, and burst sample times. */
#include "test_util.h"

/* Reference: us = ticks * 1e6 / 32768, rounded down; exact for ticks < 2^44. */
static uint64_t ref_us(uint64_t ticks)
{
    return ticks * 1000000u / 32768u;
}

static void converts_ticks_exactly(void **state)
{
    (void)state;
    hip_clock c;
    hip_clock_init(&c);
    assert_int_equal(hip_clock_now_us(&c, 0), 0);
    assert_int_equal(hip_clock_now_us(&c, 1), 30);          /* 30.52 us */
    assert_int_equal(hip_clock_now_us(&c, 33), 1007);       /* 1007.08 us */
    assert_int_equal(hip_clock_now_us(&c, 512), 15625);     /* exact */
    assert_int_equal(hip_clock_now_us(&c, 32768), 1000000); /* 1 s */
    assert_int_equal(hip_clock_now_us(&c, 32768 * 300 + 1), 300000030);
    assert_int_equal(hip_clock_now_us(&c, 0xFFFFFF), 511999969); /* 511.99997 s */
}

static void extends_over_the_24_bit_wrap(void **state)
{
    (void)state;
    hip_clock c;
    hip_clock_init(&c);
    assert_int_equal(hip_clock_now_us(&c, 0xFFFFFE), 511999938);
    assert_int_equal(hip_clock_now_us(&c, 0xFFFFFF), 511999969);
    assert_int_equal(hip_clock_now_us(&c, 0), 512000000);     /* wrapped: 2^24 ticks = 512 s */
    assert_int_equal(hip_clock_now_us(&c, 5), 512000152);
    assert_int_equal(hip_clock_now_us(&c, 5), 512000152);     /* same value: no wrap */
    assert_int_equal(hip_clock_now_us(&c, 0x800000), 768000000);
    assert_int_equal(hip_clock_now_us(&c, 0x7FFFFF), 1279999969); /* smaller: a wrap */
}

static void ignores_bits_above_24(void **state)
{
    (void)state;
    hip_clock c;
    hip_clock_init(&c);
    assert_int_equal(hip_clock_now_us(&c, 0xFF000010u), 488); /* 16 ticks */
    assert_int_equal(hip_clock_now_us(&c, 0x01000020u), 976); /* 32 ticks, no wrap */
}

/* Random steps (each under one wrap period) over about 200 days of ticks: the
 * extended clock equals the reference computed from the true tick count. */
static void long_random_run_stays_exact(void **state)
{
    (void)state;
    hip_clock c;
    hip_clock_init(&c);
    test_rng_seed(42);
    uint64_t ticks = 0;
    uint64_t last_us = 0;
    for (int i = 0; i < 100000; i++) {
        ticks += (i % 97 == 0) ? 0xFFFFFFu : test_rng_below(1u << 23); /* up to one full period */
        const uint64_t us = hip_clock_now_us(&c, (uint32_t)(ticks & 0xFFFFFFu));
        assert_true(us == ref_us(ticks));
        assert_true(us >= last_us);
        last_us = us;
    }
    assert_true(last_us > 0x100000000ull * 4u); /* well past the wire's 32-bit wrap */
}

static void no_overflow_far_out(void **state)
{
    (void)state;
    hip_clock c;
    hip_clock_init(&c);
    c.high_ticks = 1ull << 50; /* 1.1 million years */
    assert_true(hip_clock_now_us(&c, 0) == (1ull << 41) * 15625u);
    assert_true(hip_clock_now_us(&c, 1) == (1ull << 41) * 15625u + 30u);
    assert_int_equal(hip_clock_now_us(NULL, 1), 0);
}

/* 208 Hz: period 4807.69 us = 76923 / 16 us. */
static void burst_sample_times(void **state)
{
    (void)state;
    const uint64_t t = 1000000;
    const uint32_t p16 = 76923;
    assert_int_equal(hip_burst_sample_time_us(t, 4, 3, p16), t);         /* newest */
    assert_int_equal(hip_burst_sample_time_us(t, 4, 2, p16), t - 4808);  /* 4807.69 */
    assert_int_equal(hip_burst_sample_time_us(t, 4, 1, p16), t - 9615);  /* 9615.38 */
    assert_int_equal(hip_burst_sample_time_us(t, 4, 0, p16), t - 14423); /* 14423.06 */
    assert_int_equal(hip_burst_sample_time_us(t, 1, 0, p16), t);
    /* a full hardware FIFO burst: no drift from rounding each period */
    assert_int_equal(hip_burst_sample_time_us(t, 100, 0, p16), t - 475961); /* 99 x 76923 / 16 = 475961.06 */
    /* the sample before i is one period earlier, to within rounding */
    for (uint16_t i = 1; i < 100; i++) {
        const uint64_t a = hip_burst_sample_time_us(t, 100, (uint16_t)(i - 1u), p16);
        const uint64_t b = hip_burst_sample_time_us(t, 100, i, p16);
        assert_in_range(b - a, 4807, 4808);
    }
}

static void burst_edge_cases(void **state)
{
    (void)state;
    assert_int_equal(hip_burst_sample_time_us(500, 0, 0, 16), 500); /* no samples */
    assert_int_equal(hip_burst_sample_time_us(500, 3, 3, 16), 500); /* i past the end */
    assert_int_equal(hip_burst_sample_time_us(500, 3, 9, 16), 500);
    assert_int_equal(hip_burst_sample_time_us(100, 3, 0, 16 * 100), 0); /* not below 0 */
    assert_int_equal(hip_burst_sample_time_us(200, 3, 0, 16 * 100), 0);
    assert_int_equal(hip_burst_sample_time_us(201, 3, 0, 16 * 100), 1);
    assert_int_equal(hip_burst_sample_time_us(100, 2, 0, 8), 99);  /* 0.5 us rounds up */
    assert_int_equal(hip_burst_sample_time_us(100, 2, 0, 7), 100); /* 0.44 us rounds down */
    /* largest arguments: 65534 x (2^32 - 1) / 16 us, no overflow */
    const uint64_t t = 0xFFFFFFFFFFFFull;
    assert_true(hip_burst_sample_time_us(t, 0xFFFF, 0, 0xFFFFFFFFu) ==
                t - ((uint64_t)0xFFFE * 0xFFFFFFFFu + 8u) / 16u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(converts_ticks_exactly),
        cmocka_unit_test(extends_over_the_24_bit_wrap),
        cmocka_unit_test(ignores_bits_above_24),
        cmocka_unit_test(long_random_run_stays_exact),
        cmocka_unit_test(no_overflow_far_out),
        cmocka_unit_test(burst_sample_times),
        cmocka_unit_test(burst_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
