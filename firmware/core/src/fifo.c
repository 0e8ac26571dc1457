/*
 * Sample FIFO between the IMU (producer) and the radio (consumer): a ring of
 * HIP_FIFO_CAPACITY samples. When it is full the NEW sample is dropped (the
 * stored ones are the oldest, already due to be sent) and counted, so the
 * next stored sample knows how many were lost just before it.
 *
 * Not interrupt-safe by itself: the board layer pushes and pops from one
 * context (or masks the IMU interrupt around the batcher).
 */
#include "hipimu_core.h"

#define DROPPED_BEFORE_MAX 255u /* the packet header's `dropped` is one byte */

void hip_fifo_init(hip_fifo *f)
{
    if (f == NULL) {
        return;
    }
    f->head = 0u;
    f->count = 0u;
    f->pending_drops = 0u;
    f->dropped_total = 0u;
}

bool hip_fifo_push(hip_fifo *f, uint64_t t_us, const int16_t *v, uint8_t n_axes)
{
    if (f == NULL) {
        return false;
    }
    if (f->count >= HIP_FIFO_CAPACITY) {
        if (f->pending_drops < UINT32_MAX) {
            f->pending_drops++;
        }
        if (f->dropped_total < UINT32_MAX) {
            f->dropped_total++;
        }
        return false;
    }

    hip_sample *s = &f->buf[((uint32_t)f->head + f->count) % HIP_FIFO_CAPACITY];
    s->t_us = t_us;
    for (uint8_t i = 0u; i < HIP_AXES_MAX; i++) {
        s->v[i] = (v != NULL && i < n_axes) ? v[i] : 0;
    }
    s->dropped_before = (f->pending_drops > DROPPED_BEFORE_MAX) ? (uint8_t)DROPPED_BEFORE_MAX
                                                                : (uint8_t)f->pending_drops;
    f->pending_drops = 0u;
    f->count++;
    return true;
}

void hip_fifo_note_lost(hip_fifo *f, uint32_t n)
{
    if (f == NULL) {
        return;
    }
    f->pending_drops = (n > UINT32_MAX - f->pending_drops) ? UINT32_MAX : f->pending_drops + n;
    f->dropped_total = (n > UINT32_MAX - f->dropped_total) ? UINT32_MAX : f->dropped_total + n;
}

uint16_t hip_fifo_count(const hip_fifo *f)
{
    return (f == NULL) ? 0u : f->count;
}

const hip_sample *hip_fifo_peek(const hip_fifo *f, uint16_t i)
{
    if (f == NULL || i >= f->count) {
        return NULL;
    }
    return &f->buf[((uint32_t)f->head + i) % HIP_FIFO_CAPACITY];
}

void hip_fifo_pop(hip_fifo *f, uint16_t n)
{
    if (f == NULL) {
        return;
    }
    const uint16_t k = (n > f->count) ? f->count : n;
    f->head = (uint16_t)(((uint32_t)f->head + k) % HIP_FIFO_CAPACITY);
    f->count = (uint16_t)(f->count - k);
}
