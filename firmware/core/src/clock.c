/*
 * Device clock: the nRF52 RTC counts 32768 Hz ticks in 24 bits (wraps every
 * 2^24 / 32768 = 512 s). hip_clock extends it to 64 bits of ticks and
 * converts to microseconds: 1 tick = 1e6 / 32768 us = 15625 / 512 us.
 */
#include "hipimu_core.h"

#define RTC_MASK 0x00FFFFFFu          /* the counter's 24 bits */
#define RTC_WRAP_TICKS 0x01000000u    /* 2^24 ticks = 512 s */
#define US_PER_512_TICKS 15625u       /* 512 ticks = 15625 us exactly */

void hip_clock_init(hip_clock *c)
{
    if (c == NULL) {
        return;
    }
    c->last_ticks = 0u;
    c->high_ticks = 0u;
}

uint64_t hip_clock_now_us(hip_clock *c, uint32_t rtc_ticks_24)
{
    if (c == NULL) {
        return 0u;
    }
    const uint32_t t = rtc_ticks_24 & RTC_MASK;
    if (t < c->last_ticks) {
        c->high_ticks += RTC_WRAP_TICKS; /* the counter wrapped since the last call */
    }
    c->last_ticks = t;

    const uint64_t ticks = c->high_ticks + t;
    /* ticks * 15625 / 512, split so that it cannot overflow and stays exact */
    return (ticks >> 9) * US_PER_512_TICKS + (((ticks & 511u) * US_PER_512_TICKS) >> 9);
}

uint64_t hip_burst_sample_time_us(uint64_t t_read_us, uint16_t n, uint16_t i, uint32_t period_us_x16)
{
    if (i >= n) {
        return t_read_us;
    }
    const uint64_t back_us_x16 = (uint64_t)(n - 1u - i) * period_us_x16;
    const uint64_t back_us = (back_us_x16 + 8u) >> 4; /* 1/16 us -> us, rounded */
    return (back_us > t_read_us) ? 0u : t_read_us - back_us;
}
