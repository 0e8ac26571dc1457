/*
 * hipimu sensor firmware: the portable core (C99, no hardware headers).
 *
 * Everything with logic lives here and is tested on the host and on an
 * emulated Cortex-M4F; the board layer (firmware/board/) only moves bytes
 * between these functions and the IMU, the radio and the LED.
 *
 * Wire format: firmware/PROTOCOL.md (the one definition). Units: samples are
 * raw int16 counts as the IMU delivers them; times are microseconds of the
 * device clock (uint64 inside, low 32 bits on the wire). No dynamic memory:
 * every buffer is a fixed-size array inside the structs below, owned by the
 * caller (usually one static `hip_device` in the board layer).
 */
#ifndef HIPIMU_CORE_H
#define HIPIMU_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- protocol constants (PROTOCOL.md) ---------------------------------- */

#define HIP_PROTOCOL_VERSION 1u
#define HIP_HEADER_SIZE 8u
#define HIP_SAMPLE_SIZE_6D 12u          /* ax ay az gx gy gz, int16 */
#define HIP_SAMPLE_SIZE_9D 18u          /* + mx my mz */
#define HIP_AXES_MAX 9u
#define HIP_MAX_SAMPLES_PER_PACKET 32u
#define HIP_MAX_PACKET_DELAY_US 50000u
#define HIP_ATT_MTU_MIN 23u
#define HIP_ATT_MTU_MAX 247u
#define HIP_PACKET_MAX (HIP_ATT_MTU_MAX - 3u) /* largest notification payload */
#define HIP_CONFIG_SIZE 40u
#define HIP_FLAG_MAG 0x01u
#define HIP_RESPONSE_HEADER_SIZE 3u     /* 0x80 | opcode, token, status */
#define HIP_RESPONSE_MAX 11u            /* TIME_SYNC: header + nonce u32 + time u32 */
#define HIP_ATT_MTU_MIN_9D 29u          /* smallest MTU that carries one 9D sample */

enum hip_opcode {
    HIP_OP_START = 0x01,
    HIP_OP_STOP = 0x02,
    HIP_OP_SET_RATE = 0x03,
    HIP_OP_SET_RANGES = 0x04,
    HIP_OP_IDENTIFY = 0x05,
    HIP_OP_TIME_SYNC = 0x06,
    HIP_OP_RESET_DROPPED = 0x07,
    HIP_OP_SET_MAG = 0x08,
};

enum hip_status {
    HIP_OK = 0,
    HIP_ERR_UNKNOWN_OPCODE = 1,
    HIP_ERR_BAD_LENGTH = 2,
    HIP_ERR_BAD_VALUE = 3,
    HIP_ERR_BUSY = 4,
    HIP_ERR_MTU_TOO_SMALL = 5,
    HIP_ERR_NO_SENSOR = 6,
};

/* ---- packets --------------------------------------------------------------- */

/* Encode one data packet: `n` samples (6 or 9 int16 each, as on the wire) into
 * `out` (capacity `cap` bytes). Returns the packet length, or 0 if the
 * arguments are invalid (n == 0, n > HIP_MAX_SAMPLES_PER_PACKET) or it does
 * not fit. */
size_t hip_encode_packet(uint8_t *out, size_t cap, uint8_t seq, uint8_t dropped, uint32_t t0_us,
                         const int16_t *samples, uint8_t n, bool with_mag);

/* Samples that fit one packet at this ATT MTU (0: none fit). An MTU under
 * HIP_ATT_MTU_MIN does not exist (0); one over HIP_ATT_MTU_MAX counts as
 * HIP_ATT_MTU_MAX, the largest packet the core builds (HIP_PACKET_MAX). */
uint8_t hip_samples_per_packet(uint16_t att_mtu, bool with_mag);

/* ---- sample FIFO with overflow accounting --------------------------------- */

#define HIP_FIFO_CAPACITY 256u /* samples: 1.2 s at 208 Hz */

typedef struct {
    uint64_t t_us;                /* device time the IMU took it */
    int16_t v[HIP_AXES_MAX];      /* acc, gyr, (mag) counts */
    uint8_t dropped_before;       /* samples dropped just before this one (saturating) */
} hip_sample;

typedef struct {
    hip_sample buf[HIP_FIFO_CAPACITY];
    uint16_t head;                /* index of the oldest sample */
    uint16_t count;
    uint32_t pending_drops;       /* dropped since the newest stored sample */
    uint32_t dropped_total;       /* since start / RESET_DROPPED */
} hip_fifo;

void hip_fifo_init(hip_fifo *f);
/* Store a sample; when full, the new sample is dropped and counted (the
 * oldest ones are already promised to the radio). Returns false if dropped.
 * n_axes: 6 or 9 values in `v`; axes past n_axes are stored as 0, values past
 * HIP_AXES_MAX are ignored. The stored sample's dropped_before takes
 * pending_drops (saturated at 255), which restarts at 0. */
bool hip_fifo_push(hip_fifo *f, uint64_t t_us, const int16_t *v, uint8_t n_axes);
/* Count `n` samples lost before the next stored one elsewhere (the IMU's own
 * FIFO overflowed because the main loop stalled): they are reported like
 * FIFO drops, so the next packet starts after the gap with its own t0. */
void hip_fifo_note_lost(hip_fifo *f, uint32_t n);
uint16_t hip_fifo_count(const hip_fifo *f);
const hip_sample *hip_fifo_peek(const hip_fifo *f, uint16_t i); /* i-th oldest, NULL past the end */
void hip_fifo_pop(hip_fifo *f, uint16_t n);                        /* n > count: empties it */

/* ---- device clock ------------------------------------------------------------ */

/* Extends a 24-bit, 32768 Hz RTC counter (nRF52 RTC) to a 64-bit microsecond
 * clock: us = ticks * 15625 / 512, rounded down, exact. Call hip_clock_now_us
 * with the raw counter at least once per 512 s (the counter's wrap period),
 * always from the same context and in time order: a value smaller than the
 * previous one is taken as a wrap. */
typedef struct {
    uint32_t last_ticks;          /* last raw 24-bit value */
    uint64_t high_ticks;          /* accumulated wraps, in ticks */
} hip_clock;

void hip_clock_init(hip_clock *c);
uint64_t hip_clock_now_us(hip_clock *c, uint32_t rtc_ticks_24);

/* Time of each sample of an IMU FIFO burst: `n` samples were read at `t_read_us`,
 * the newest taken at most one period before it. Sample i (0 oldest) gets
 * t_read_us - (n - 1 - i) * period, rounded to the nearest us, not below 0;
 * i >= n gives t_read_us. period_us_x16: the sample period in 1/16 us
 * (208 Hz: 76923). */
uint64_t hip_burst_sample_time_us(uint64_t t_read_us, uint16_t n, uint16_t i, uint32_t period_us_x16);

/* ---- device state, commands, config -------------------------------------------- */

typedef struct {
    /* identity (set by the board at start-up) */
    uint8_t device_id[8];         /* FICR DEVICEID, most significant byte first */
    uint8_t fw_version[3];
    uint8_t imu_part;             /* 1 LSM6DS3TR-C, 2 LSM6DSOX, 3 BMI270, 4 LSM6DS33 */
    uint8_t mag_part;             /* 0 none, 1 LIS3MDL, 2 LIS2MDL, 3 BMM150 */
    bool imu_ok, mag_ok, charging;
    uint8_t battery_percent;
    /* settings (changed by commands) */
    uint16_t rate_hz;             /* 52, 104, 208 */
    uint8_t acc_range_g;          /* 2, 4, 8, 16 */
    uint16_t gyr_range_dps;       /* 125 .. 2000 */
    bool mag_enabled;
    /* link and streaming */
    uint16_t att_mtu;
    bool streaming;
    uint8_t seq;
    uint8_t identify_seconds;     /* > 0: the board blinks for this long, then sets 0 */
    hip_fifo fifo;
} hip_device;

/* Defaults: 208 Hz, +-8 g, +-1000 dps, no mag, MTU 23, idle. */
void hip_device_init(hip_device *d);

/* Handle one control-characteristic write (`req`, `len` bytes) at device time
 * `now_us`; writes exactly one response into `resp` (capacity >=
 * HIP_RESPONSE_MAX) and returns its length. Never fails: invalid requests get
 * an error status. Only a programming error (d or resp NULL, resp_cap too
 * small) returns 0, without handling the request.
 * Checks in this order, the first failing one answers: empty write
 * (ERR_BAD_LENGTH, opcode 0x00, token 0), opcode (ERR_UNKNOWN_OPCODE), length
 * (ERR_BAD_LENGTH), argument values (ERR_BAD_VALUE), then the state:
 * ERR_BUSY, ERR_NO_SENSOR, ERR_MTU_TOO_SMALL. So a malformed request gets the
 * same answer in every state. START from idle empties the FIFO (and its drop
 * counters) and restarts seq at 0; START while streaming changes nothing.
 * RESET_DROPPED zeroes dropped_total and seq; the drops still waiting to be
 * reported in a packet's `dropped` field (pending_drops, dropped_before) stay,
 * since they tell the host where samples are missing. */
size_t hip_handle_command(hip_device *d, const uint8_t *req, size_t len, uint64_t now_us,
                          uint8_t *resp, size_t resp_cap);

/* The config characteristic's 40 bytes. Returns HIP_CONFIG_SIZE, 0 if cap too small. */
size_t hip_encode_config(const hip_device *d, uint8_t *out, size_t cap);

/* Physical scales of the current ranges (PROTOCOL.md), from the datasheet
 * sensitivities; 0 for a range the part does not have. */
float hip_acc_scale_m_s2(uint8_t acc_range_g);   /* LSM6DS3TR-C, m/s^2 per LSB */
float hip_gyr_scale_rad_s(uint16_t gyr_range_dps); /* LSM6DS3TR-C, rad/s per LSB */
float hip_mag_scale_uT(uint8_t mag_part);        /* uT per LSB; 0: no magnetometer */

/* The next data packet from the FIFO, if one is due at `now_us`: a full one
 * (as many samples as fit the MTU), or a partial one whose first sample is
 * HIP_MAX_PACKET_DELAY_US old, or one ending where a drop happened or before a
 * sample taken HIP_MAX_PACKET_DELAY_US or more after its first (a packet spans
 * less than that, so the packets depend only on the samples, not on when this
 * is called). Pops the samples it sends and advances seq. Returns the length
 * written into `out` (capacity >= HIP_PACKET_MAX), 0 when nothing is due or
 * not streaming. Call it until it returns 0: one call builds at most one packet. */
size_t hip_next_packet(hip_device *d, uint64_t now_us, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* HIPIMU_CORE_H */
