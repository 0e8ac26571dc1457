/*
 * Batcher: FIFO -> data packets (PROTOCOL.md, "Batching and the MTU").
 * A packet takes the oldest samples, as many as fit the MTU, and ends early
 *  - before a sample with dropped_before > 0: a packet holds consecutive
 *    samples only; that sample opens the next packet and its drops go into
 *    that packet's `dropped` field;
 *  - before a sample taken HIP_MAX_PACKET_DELAY_US or more after the first
 *    one: a packet sent at the latest 50 ms after its first sample cannot hold
 *    it (at 208 Hz this, not the MTU, limits a packet to 11 samples).
 * So the packets depend only on the samples, not on when this runs. A packet
 * is due once it cannot grow (full, or a sample ending it is there) or its
 * first sample is HIP_MAX_PACKET_DELAY_US old at `now_us`.
 */
#include "hipimu_core.h"

/* int16 values of the largest packet: (244 - 8) bytes / 2 */
#define PACKET_VALUES_MAX ((HIP_PACKET_MAX - HIP_HEADER_SIZE) / 2u)

size_t hip_next_packet(hip_device *d, uint64_t now_us, uint8_t *out, size_t cap)
{
    if (d == NULL || out == NULL || !d->streaming) {
        return 0u;
    }
    const bool with_mag = d->mag_enabled;
    const uint8_t axes = with_mag ? 9u : 6u;
    const uint8_t per_packet = hip_samples_per_packet(d->att_mtu, with_mag); /* <= 19 (6D) */
    const uint16_t available = hip_fifo_count(&d->fifo);
    if (per_packet == 0u || available == 0u) {
        return 0u;
    }

    /* Consecutive samples from the oldest on, up to a drop or the 50 ms window. */
    const hip_sample *first = hip_fifo_peek(&d->fifo, 0u);
    uint8_t n = 1u;
    bool ended = (n == per_packet);
    while (!ended && n < available) {
        const hip_sample *s = hip_fifo_peek(&d->fifo, n);
        /* a time before the first sample (never expected) also ends the packet */
        if (s->dropped_before > 0u || s->t_us < first->t_us ||
            s->t_us - first->t_us >= HIP_MAX_PACKET_DELAY_US) {
            ended = true;
        } else {
            n++;
            ended = (n == per_packet);
        }
    }
    const bool late = (now_us >= first->t_us) && (now_us - first->t_us >= HIP_MAX_PACKET_DELAY_US);
    if (!ended && !late) {
        return 0u;
    }

    int16_t values[PACKET_VALUES_MAX];
    for (uint8_t i = 0u; i < n; i++) {
        const hip_sample *s = hip_fifo_peek(&d->fifo, i);
        for (uint8_t a = 0u; a < axes; a++) {
            values[(size_t)i * axes + a] = s->v[a];
        }
    }
    const size_t len = hip_encode_packet(out, cap, d->seq, first->dropped_before,
                                         (uint32_t)(first->t_us & 0xFFFFFFFFu), values, n, with_mag);
    if (len == 0u) {
        return 0u; /* `out` too small: keep the samples */
    }
    hip_fifo_pop(&d->fifo, n);
    d->seq = (uint8_t)(d->seq + 1u); /* wraps 255 -> 0 */
    return len;
}
