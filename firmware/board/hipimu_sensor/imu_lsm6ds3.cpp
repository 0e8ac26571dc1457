#include "imu_lsm6ds3.h"

#include <Arduino.h>
#include <Wire.h>

#include "board_pins.h"
#include "power.h"

namespace {

const uint8_t CHUNK_SAMPLES = 4; /* 48 bytes per I2C read: fits any Wire buffer */

volatile bool g_irq = false;

void on_int1() { /* ISR_DEFERRED: runs in a task, may use FreeRTOS calls */
    g_irq = true;
    power_wake();
}

bool write_reg(uint8_t reg, uint8_t value) {
    HIP_IMU_WIRE.beginTransmission(lsm6::I2C_ADDR);
    HIP_IMU_WIRE.write(reg);
    HIP_IMU_WIRE.write(value);
    return HIP_IMU_WIRE.endTransmission(true) == 0;
}

bool read_regs(uint8_t reg, uint8_t *buf, uint8_t n) {
    HIP_IMU_WIRE.beginTransmission(lsm6::I2C_ADDR);
    HIP_IMU_WIRE.write(reg);
    if (HIP_IMU_WIRE.endTransmission(false) != 0) return false; /* repeated start */
    if (HIP_IMU_WIRE.requestFrom(lsm6::I2C_ADDR, (size_t)n) != n) return false;
    for (uint8_t i = 0; i < n; i++) buf[i] = (uint8_t)HIP_IMU_WIRE.read();
    return true;
}

bool odr_code(uint16_t rate_hz, uint8_t *code) {
    switch (rate_hz) {
    case 52: *code = lsm6::ODR_52HZ; return true;
    case 104: *code = lsm6::ODR_104HZ; return true;
    case 208: *code = lsm6::ODR_208HZ; return true;
    default: return false;
    }
}

bool fs_xl_code(uint8_t g, uint8_t *code) {
    switch (g) {
    case 2: *code = lsm6::FS_XL_2G; return true;
    case 4: *code = lsm6::FS_XL_4G; return true;
    case 8: *code = lsm6::FS_XL_8G; return true;
    case 16: *code = lsm6::FS_XL_16G; return true;
    default: return false;
    }
}

bool fs_g_code(uint16_t dps, uint8_t *code) {
    switch (dps) {
    case 125: *code = lsm6::FS_G_125DPS; return true;
    case 250: *code = lsm6::FS_G_250DPS; return true;
    case 500: *code = lsm6::FS_G_500DPS; return true;
    case 1000: *code = lsm6::FS_G_1000DPS; return true;
    case 2000: *code = lsm6::FS_G_2000DPS; return true;
    default: return false;
    }
}

int16_t le16(const uint8_t *p) { return (int16_t)(uint16_t)(p[0] | (p[1] << 8)); }

}  // namespace

bool imu_begin() {
    pinMode(PIN_LSM6DS3TR_C_POWER, OUTPUT);
    digitalWrite(PIN_LSM6DS3TR_C_POWER, HIGH);
    delay(20); /* supply ramp + boot (datasheet: 15 ms turn-on) */
    HIP_IMU_WIRE.begin();
    HIP_IMU_WIRE.setClock(400000);

    uint8_t who = 0;
    if (!read_regs(lsm6::WHO_AM_I, &who, 1) || who != lsm6::WHO_AM_I_VALUE) return false;
    if (!write_reg(lsm6::CTRL3_C, lsm6::CTRL3_SW_RESET)) return false;
    delay(1);
    /* block data update, register auto-increment (also lets FIFO bursts run) */
    if (!write_reg(lsm6::CTRL3_C, lsm6::CTRL3_BDU | lsm6::CTRL3_IF_INC)) return false;
    imu_stop();
    pinMode(PIN_LSM6DS3TR_C_INT1, INPUT);
    attachInterrupt(digitalPinToInterrupt(PIN_LSM6DS3TR_C_INT1), on_int1, ISR_DEFERRED | RISING);
    return true;
}

bool imu_take_irq() {
    bool irq = g_irq;
    g_irq = false;
    return irq;
}

bool imu_start(uint16_t rate_hz, uint8_t acc_range_g, uint16_t gyr_range_dps) {
    uint8_t odr, fs_xl, fs_g;
    if (!odr_code(rate_hz, &odr) || !fs_xl_code(acc_range_g, &fs_xl) || !fs_g_code(gyr_range_dps, &fs_g))
        return false;
    bool ok = write_reg(lsm6::FIFO_CTRL5, lsm6::FIFO_MODE_BYPASS); /* empty it */
    ok = ok && write_reg(lsm6::CTRL6_C, 0x00);                     /* accel high performance */
    ok = ok && write_reg(lsm6::CTRL7_G, 0x00);                     /* gyro high performance */
    uint16_t fth_words = (uint16_t)((rate_hz >= 100 ? rate_hz / 50 : 1) * lsm6::WORDS_PER_SAMPLE);
    ok = ok && write_reg(lsm6::FIFO_CTRL1, (uint8_t)(fth_words & 0xFF));
    ok = ok && write_reg(lsm6::FIFO_CTRL2, (uint8_t)((fth_words >> 8) & 0x07));
    ok = ok && write_reg(lsm6::INT1_CTRL, lsm6::INT1_FTH);
    ok = ok && write_reg(lsm6::FIFO_CTRL3,
                         (uint8_t)((lsm6::FIFO_NO_DECIMATION << 3) | lsm6::FIFO_NO_DECIMATION));
    ok = ok && write_reg(lsm6::FIFO_CTRL4, 0x00);
    ok = ok && write_reg(lsm6::CTRL1_XL, (uint8_t)((odr << 4) | fs_xl));
    ok = ok && write_reg(lsm6::CTRL2_G, (uint8_t)((odr << 4) | fs_g));
    ok = ok && write_reg(lsm6::FIFO_CTRL5, (uint8_t)((odr << 3) | lsm6::FIFO_MODE_CONTINUOUS));
    return ok;
}

void imu_stop() {
    write_reg(lsm6::INT1_CTRL, 0x00);
    write_reg(lsm6::CTRL1_XL, lsm6::ODR_POWER_DOWN);
    write_reg(lsm6::CTRL2_G, lsm6::ODR_POWER_DOWN);
    write_reg(lsm6::FIFO_CTRL5, lsm6::FIFO_MODE_BYPASS);
}

void imu_power_off() {
    imu_stop();
    detachInterrupt(digitalPinToInterrupt(PIN_LSM6DS3TR_C_INT1));
    HIP_IMU_WIRE.end();
    digitalWrite(PIN_LSM6DS3TR_C_POWER, LOW);
}

uint16_t imu_fifo_samples(bool *overrun) {
    uint8_t s[4];
    *overrun = false;
    if (!read_regs(lsm6::FIFO_STATUS1, s, 4)) return 0;
    *overrun = (s[1] & lsm6::FIFO_STATUS2_OVER_RUN) != 0;
    if (s[1] & lsm6::FIFO_STATUS2_EMPTY) return 0;
    uint16_t words = (uint16_t)(((s[1] & lsm6::FIFO_STATUS2_DIFF_HIGH) << 8) | s[0]);
    uint16_t pattern = (uint16_t)(((s[3] & 0x03) << 8) | s[2]);
    if (pattern != 0) { /* skip the rest of a partial sample so we start at Gx */
        uint8_t skip = (uint8_t)(lsm6::WORDS_PER_SAMPLE - pattern % lsm6::WORDS_PER_SAMPLE);
        uint8_t junk[2 * lsm6::WORDS_PER_SAMPLE];
        if (skip > words || !read_regs(lsm6::FIFO_DATA_OUT_L, junk, (uint8_t)(2 * skip))) return 0;
        words = (uint16_t)(words - skip);
    }
    return (uint16_t)(words / lsm6::WORDS_PER_SAMPLE);
}

uint16_t imu_fifo_read(int16_t *out, uint16_t n) {
    uint8_t raw[CHUNK_SAMPLES * 2 * lsm6::WORDS_PER_SAMPLE];
    uint16_t done = 0;
    while (done < n) {
        uint8_t k = (uint8_t)((n - done) < CHUNK_SAMPLES ? (n - done) : CHUNK_SAMPLES);
        if (!read_regs(lsm6::FIFO_DATA_OUT_L, raw, (uint8_t)(k * 2 * lsm6::WORDS_PER_SAMPLE))) break;
        for (uint8_t j = 0; j < k; j++) {
            const uint8_t *w = raw + j * 2 * lsm6::WORDS_PER_SAMPLE; /* Gx Gy Gz Ax Ay Az */
            int16_t *v = out + (done + j) * 6;                       /* ax ay az gx gy gz */
            v[0] = le16(w + 6);
            v[1] = le16(w + 8);
            v[2] = le16(w + 10);
            v[3] = le16(w + 0);
            v[4] = le16(w + 2);
            v[5] = le16(w + 4);
        }
        done = (uint16_t)(done + k);
    }
    return done;
}
