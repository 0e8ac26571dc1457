/*
 * LSM6DS3TR-C accelerometer + gyroscope, register level, FIFO only.
 *
 * Register map and codes: ST's LSM6DS3TR-C datasheet, written as
 * constants so they can be checked against it line by line. The FIFO holds
 * one "data set" per sensor; with gyro and accel at the same rate and no
 * decimation a sample is 6 words in the order Gx Gy Gz Ax Ay Az. This driver
 * hands them out in the wire's order ax ay az gx gy gz (PROTOCOL.md).
 */
#ifndef HIPIMU_IMU_LSM6DS3_H
#define HIPIMU_IMU_LSM6DS3_H

#include <stdint.h>

namespace lsm6 {

const uint8_t I2C_ADDR = 0x6A;       /* SA0 low, as on the XIAO Sense */
const uint8_t WHO_AM_I_VALUE = 0x6A; /* LSM6DS3TR-C (the older LSM6DS3 reads 0x69) */

/* registers */
const uint8_t FIFO_CTRL1 = 0x06;      /* FTH[7:0]: watermark, in 16-bit words */
const uint8_t FIFO_CTRL2 = 0x07;      /* FTH[10:8] in bits 2:0 */
const uint8_t FIFO_CTRL3 = 0x08;      /* DEC_FIFO_GYRO bits 5:3, DEC_FIFO_XL bits 2:0 */
const uint8_t FIFO_CTRL4 = 0x09;      /* third/fourth data sets: unused, 0 */
const uint8_t FIFO_CTRL5 = 0x0A;      /* ODR_FIFO bits 6:3, FIFO_MODE bits 2:0 */
const uint8_t INT1_CTRL = 0x0D;
const uint8_t WHO_AM_I = 0x0F;
const uint8_t CTRL1_XL = 0x10;        /* ODR_XL bits 7:4, FS_XL bits 3:2 */
const uint8_t CTRL2_G = 0x11;         /* ODR_G bits 7:4, FS_G bits 3:1 (FS_125 = bit 1) */
const uint8_t CTRL3_C = 0x12;
const uint8_t CTRL6_C = 0x15;         /* XL_HM_MODE bit 4: 0 = high performance */
const uint8_t CTRL7_G = 0x16;         /* G_HM_MODE bit 7: 0 = high performance */
const uint8_t FIFO_STATUS1 = 0x3A;    /* DIFF_FIFO[7:0]: unread words */
const uint8_t FIFO_STATUS2 = 0x3B;    /* WaterM, OVER_RUN, FULL_SMART, EMPTY, DIFF_FIFO[10:8] */
const uint8_t FIFO_STATUS3 = 0x3C;    /* FIFO_PATTERN[7:0]: index of the next word */
const uint8_t FIFO_STATUS4 = 0x3D;    /* FIFO_PATTERN[9:8] */
const uint8_t FIFO_DATA_OUT_L = 0x3E; /* burst reads stay on the FIFO output */

/* CTRL3_C bits */
const uint8_t CTRL3_BDU = 0x40;
const uint8_t CTRL3_IF_INC = 0x04;
const uint8_t CTRL3_SW_RESET = 0x01;

/* output data rate codes: the same 4-bit code for ODR_XL, ODR_G and ODR_FIFO */
const uint8_t ODR_POWER_DOWN = 0x0;
const uint8_t ODR_52HZ = 0x3;
const uint8_t ODR_104HZ = 0x4;
const uint8_t ODR_208HZ = 0x5;

/* full-scale codes, already shifted into place */
const uint8_t FS_XL_2G = 0x0 << 2;
const uint8_t FS_XL_16G = 0x1 << 2;
const uint8_t FS_XL_4G = 0x2 << 2;
const uint8_t FS_XL_8G = 0x3 << 2;
const uint8_t FS_G_250DPS = 0x0 << 1;
const uint8_t FS_G_125DPS = 0x1 << 1;
const uint8_t FS_G_500DPS = 0x2 << 1;
const uint8_t FS_G_1000DPS = 0x4 << 1;
const uint8_t FS_G_2000DPS = 0x6 << 1;

/* FIFO */
const uint8_t FIFO_MODE_BYPASS = 0x0;     /* also empties the FIFO */
const uint8_t FIFO_MODE_CONTINUOUS = 0x6; /* newest data overwrite the oldest when full */
const uint8_t FIFO_NO_DECIMATION = 0x1;   /* DEC_FIFO_x code: data set in FIFO, no decimation */
const uint8_t INT1_FTH = 0x08;            /* INT1_CTRL: FIFO level >= FTH on INT1 */
const uint8_t FIFO_STATUS2_OVER_RUN = 0x40;
const uint8_t FIFO_STATUS2_EMPTY = 0x10;
const uint8_t FIFO_STATUS2_DIFF_HIGH = 0x07;
const uint16_t FIFO_WORDS = 2048;         /* 4 kbyte */
const uint8_t WORDS_PER_SAMPLE = 6;       /* Gx Gy Gz Ax Ay Az */

/* sensitivities (datasheet table 3), for reference: the core owns the scales */
/* acc: 0.061 / 0.122 / 0.244 / 0.488 mg/LSB at 2 / 4 / 8 / 16 g            */
/* gyr: 4.375 / 8.75 / 17.5 / 35 / 70 mdps/LSB at 125 / 250 / 500 / 1000 / 2000 dps */

}  // namespace lsm6

/* Power the IMU, check WHO_AM_I, soft-reset it and leave it powered down
 * (accel and gyro off, ~3 uA); attach INT1 (deferred: the handler runs in a
 * task and wakes loop()). Returns false if it does not answer. */
bool imu_begin();

/* Start accel + gyro at rate_hz (52, 104, 208) with the given ranges, FIFO in
 * continuous mode, emptied, and its threshold on INT1 at rate_hz / 50
 * samples (about every 20 ms). Returns false on a bus error or a bad argument. */
bool imu_start(uint16_t rate_hz, uint8_t acc_range_g, uint16_t gyr_range_dps);

/* INT1 rose since the last call: the FIFO just reached its threshold, so the
 * newest sample in it is only as old as the interrupt latency. Reading the
 * FIFO right away (instead of on a free-running timer) keeps each burst's
 * time anchor (hip_burst_sample_time_us) well inside half a sample period. */
bool imu_take_irq();

/* Accel and gyro to power-down, FIFO to bypass (empty). */
void imu_stop();

/* Cut the IMU's supply (before System OFF). */
void imu_power_off();

/* Complete samples waiting in the FIFO. Discards a partial sample at the
 * head (after an overrun the FIFO may not start at Gx). *overrun: the FIFO
 * overflowed since the last call (samples were lost). 0 on a bus error. */
uint16_t imu_fifo_samples(bool *overrun);

/* Read n complete samples (n <= what imu_fifo_samples returned) into out,
 * 6 int16 per sample in wire order: ax ay az gx gy gz. Returns samples read. */
uint16_t imu_fifo_read(int16_t *out, uint16_t n);

#endif /* HIPIMU_IMU_LSM6DS3_H */
