/* Sample FIFO with overflow accounting. */
#include "test_util.h"

static hip_fifo fifo; /* 8 KiB: static, not on the stack */

static void push_k(hip_fifo *f, uint32_t k)
{
    const int16_t v[6] = {(int16_t)k, (int16_t)(k >> 16), 1, 2, 3, 4};
    assert_true(hip_fifo_push(f, 1000u + k, v, 6));
}

static void init_is_empty(void **state)
{
    (void)state;
    memset(&fifo, 0xA5, sizeof fifo);
    hip_fifo_init(&fifo);
    assert_int_equal(hip_fifo_count(&fifo), 0);
    assert_null(hip_fifo_peek(&fifo, 0));
    assert_int_equal(fifo.pending_drops, 0);
    assert_int_equal(fifo.dropped_total, 0);
}

static void push_peek_pop_in_order(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    const int16_t v9[9] = {-1, -2, -3, 4, 5, 6, 700, -800, 900};
    const int16_t v6[6] = {10, 20, 30, 40, 50, 60};
    assert_true(hip_fifo_push(&fifo, 0x100000000ull, v9, 9));
    assert_true(hip_fifo_push(&fifo, 5u, v6, 6));
    assert_int_equal(hip_fifo_count(&fifo), 2);

    const hip_sample *s = hip_fifo_peek(&fifo, 0);
    assert_non_null(s);
    assert_true(s->t_us == 0x100000000ull);
    assert_memory_equal(s->v, v9, sizeof v9);
    assert_int_equal(s->dropped_before, 0);
    s = hip_fifo_peek(&fifo, 1);
    assert_non_null(s);
    assert_int_equal(s->t_us, 5);
    assert_memory_equal(s->v, v6, sizeof v6);
    assert_int_equal(s->v[6], 0); /* 6 axes: no mag, zeros */
    assert_int_equal(s->v[7], 0);
    assert_int_equal(s->v[8], 0);
    assert_null(hip_fifo_peek(&fifo, 2));

    hip_fifo_pop(&fifo, 1);
    assert_int_equal(hip_fifo_count(&fifo), 1);
    assert_int_equal(hip_fifo_peek(&fifo, 0)->t_us, 5);
    hip_fifo_pop(&fifo, 0);
    assert_int_equal(hip_fifo_count(&fifo), 1);
    hip_fifo_pop(&fifo, 100); /* more than stored: empties it */
    assert_int_equal(hip_fifo_count(&fifo), 0);
    assert_null(hip_fifo_peek(&fifo, 0));
}

static void wraps_around_the_ring(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    uint32_t next_in = 0, next_out = 0;
    test_rng_seed(7);
    for (int round = 0; round < 2000; round++) {
        const uint32_t pushes = test_rng_below(40);
        for (uint32_t i = 0; i < pushes && hip_fifo_count(&fifo) < HIP_FIFO_CAPACITY; i++) {
            push_k(&fifo, next_in++);
        }
        const uint16_t count = hip_fifo_count(&fifo);
        assert_int_equal(count, next_in - next_out);
        for (uint16_t i = 0; i < count; i++) {
            const hip_sample *s = hip_fifo_peek(&fifo, i);
            assert_non_null(s);
            assert_int_equal(s->t_us, 1000u + next_out + i);
            assert_int_equal((uint16_t)s->v[0], (uint16_t)(next_out + i));
        }
        const uint16_t pops = (uint16_t)test_rng_below(40u);
        hip_fifo_pop(&fifo, pops);
        next_out += (pops < count) ? pops : count;
    }
    assert_true(next_in > 10u * HIP_FIFO_CAPACITY); /* went round many times */
    assert_int_equal(fifo.dropped_total, 0);
}

static void overflow_drops_the_new_sample_and_counts(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    for (uint32_t k = 0; k < HIP_FIFO_CAPACITY; k++) {
        push_k(&fifo, k);
    }
    const int16_t v[6] = {0};
    for (uint32_t k = 0; k < 10; k++) {
        assert_false(hip_fifo_push(&fifo, 99999u, v, 6));
    }
    assert_int_equal(hip_fifo_count(&fifo), HIP_FIFO_CAPACITY);
    assert_int_equal(fifo.pending_drops, 10);
    assert_int_equal(fifo.dropped_total, 10);
    /* the stored samples are untouched: the oldest still first, the newest last */
    assert_int_equal(hip_fifo_peek(&fifo, 0)->t_us, 1000);
    assert_int_equal(hip_fifo_peek(&fifo, HIP_FIFO_CAPACITY - 1)->t_us, 1000 + HIP_FIFO_CAPACITY - 1);

    hip_fifo_pop(&fifo, 1);
    push_k(&fifo, 5000);
    const hip_sample *s = hip_fifo_peek(&fifo, HIP_FIFO_CAPACITY - 1);
    assert_int_equal(s->t_us, 6000);
    assert_int_equal(s->dropped_before, 10);
    assert_int_equal(fifo.pending_drops, 0);
    assert_int_equal(fifo.dropped_total, 10);

    hip_fifo_pop(&fifo, 1);
    push_k(&fifo, 5001);
    assert_int_equal(hip_fifo_peek(&fifo, HIP_FIFO_CAPACITY - 1)->dropped_before, 0);
    for (uint16_t i = 0; i < HIP_FIFO_CAPACITY - 2; i++) {
        assert_int_equal(hip_fifo_peek(&fifo, i)->dropped_before, 0);
    }
}

static void dropped_before_saturates_total_does_not(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    for (uint32_t k = 0; k < HIP_FIFO_CAPACITY; k++) {
        push_k(&fifo, k);
    }
    const int16_t v[6] = {0};
    for (uint32_t k = 0; k < 1000; k++) {
        assert_false(hip_fifo_push(&fifo, 0, v, 6));
    }
    assert_int_equal(fifo.pending_drops, 1000);
    hip_fifo_pop(&fifo, HIP_FIFO_CAPACITY);
    push_k(&fifo, 1);
    assert_int_equal(hip_fifo_peek(&fifo, 0)->dropped_before, 255);
    assert_int_equal(fifo.dropped_total, 1000);

    /* exactly 255 is not clipped */
    for (uint32_t k = 1; k < HIP_FIFO_CAPACITY; k++) {
        push_k(&fifo, k);
    }
    for (uint32_t k = 0; k < 255; k++) {
        assert_false(hip_fifo_push(&fifo, 0, v, 6));
    }
    hip_fifo_pop(&fifo, 1);
    push_k(&fifo, 2);
    assert_int_equal(hip_fifo_peek(&fifo, HIP_FIFO_CAPACITY - 1)->dropped_before, 255);
    assert_int_equal(fifo.dropped_total, 1255);
}

static void counters_saturate_at_uint32_max(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    for (uint32_t k = 0; k < HIP_FIFO_CAPACITY; k++) {
        push_k(&fifo, k);
    }
    fifo.pending_drops = UINT32_MAX - 1u;
    fifo.dropped_total = UINT32_MAX - 1u;
    const int16_t v[6] = {0};
    assert_false(hip_fifo_push(&fifo, 0, v, 6));
    assert_false(hip_fifo_push(&fifo, 0, v, 6));
    assert_int_equal(fifo.pending_drops, UINT32_MAX);
    assert_int_equal(fifo.dropped_total, UINT32_MAX);
}

static void odd_arguments(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    const int16_t v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    assert_true(hip_fifo_push(&fifo, 1, v, 12)); /* extra values ignored */
    assert_memory_equal(hip_fifo_peek(&fifo, 0)->v, v, 9 * sizeof v[0]);
    assert_true(hip_fifo_push(&fifo, 2, NULL, 6)); /* no values: zeros */
    for (size_t a = 0; a < HIP_AXES_MAX; a++) {
        assert_int_equal(hip_fifo_peek(&fifo, 1)->v[a], 0);
    }
    assert_true(hip_fifo_push(&fifo, 3, v, 0));
    assert_int_equal(hip_fifo_peek(&fifo, 2)->v[0], 0);
    /* NULL fifo: harmless */
    hip_fifo_init(NULL);
    assert_false(hip_fifo_push(NULL, 0, v, 6));
    assert_int_equal(hip_fifo_count(NULL), 0);
    assert_null(hip_fifo_peek(NULL, 0));
    hip_fifo_pop(NULL, 1);
}

static void lost_elsewhere_counts_like_a_drop(void **state)
{
    (void)state;
    hip_fifo_init(&fifo);
    push_k(&fifo, 1);
    hip_fifo_note_lost(&fifo, 3);
    hip_fifo_note_lost(&fifo, 400); /* 403 in all: the sample's byte saturates */
    push_k(&fifo, 2);
    assert_int_equal(hip_fifo_peek(&fifo, 0)->dropped_before, 0);
    assert_int_equal(hip_fifo_peek(&fifo, 1)->dropped_before, 255);
    assert_int_equal(fifo.dropped_total, 403);
    assert_int_equal(fifo.pending_drops, 0);
    fifo.dropped_total = UINT32_MAX - 1u;
    hip_fifo_note_lost(&fifo, 5); /* saturates, never wraps */
    assert_int_equal(fifo.dropped_total, UINT32_MAX);
    hip_fifo_note_lost(NULL, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_is_empty),
        cmocka_unit_test(push_peek_pop_in_order),
        cmocka_unit_test(wraps_around_the_ring),
        cmocka_unit_test(overflow_drops_the_new_sample_and_counts),
        cmocka_unit_test(dropped_before_saturates_total_does_not),
        cmocka_unit_test(counters_saturate_at_uint32_max),
        cmocka_unit_test(odd_arguments),
        cmocka_unit_test(lost_elsewhere_counts_like_a_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
