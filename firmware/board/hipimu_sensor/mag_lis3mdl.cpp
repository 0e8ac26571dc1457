#include "mag_lis3mdl.h"

#include <Arduino.h>
#include <Wire.h>

#include "board_pins.h"

namespace {

uint8_t g_addr = 0; /* 0: no magnetometer */

bool write_reg(uint8_t reg, uint8_t value) {
    HIP_MAG_WIRE.beginTransmission(g_addr);
    HIP_MAG_WIRE.write(reg);
    HIP_MAG_WIRE.write(value);
    return HIP_MAG_WIRE.endTransmission(true) == 0;
}

bool read_regs(uint8_t addr, uint8_t reg, uint8_t *buf, uint8_t n) {
    HIP_MAG_WIRE.beginTransmission(addr);
    HIP_MAG_WIRE.write((uint8_t)(n > 1 ? (reg | lis3mdl::AUTO_INCREMENT) : reg));
    if (HIP_MAG_WIRE.endTransmission(false) != 0) return false;
    if (HIP_MAG_WIRE.requestFrom(addr, (size_t)n) != n) return false;
    for (uint8_t i = 0; i < n; i++) buf[i] = (uint8_t)HIP_MAG_WIRE.read();
    return true;
}

}  // namespace

bool mag_begin() {
#if HIP_WITH_MAG
    HIP_MAG_WIRE.begin();
    HIP_MAG_WIRE.setClock(400000);
    const uint8_t candidates[2] = {lis3mdl::I2C_ADDR_LOW, lis3mdl::I2C_ADDR_HIGH};
    for (uint8_t i = 0; i < 2; i++) {
        uint8_t who = 0;
        if (read_regs(candidates[i], lis3mdl::WHO_AM_I, &who, 1) && who == lis3mdl::WHO_AM_I_VALUE) {
            g_addr = candidates[i];
            break;
        }
    }
    if (g_addr == 0) {
        HIP_MAG_WIRE.end();
        return false;
    }
    write_reg(lis3mdl::CTRL_REG2, lis3mdl::CTRL2_SOFT_RST);
    delay(2);
    bool ok = write_reg(lis3mdl::CTRL_REG1, lis3mdl::CTRL1_OM_UHP | lis3mdl::CTRL1_DO_80HZ);
    ok = ok && write_reg(lis3mdl::CTRL_REG2, lis3mdl::CTRL2_FS_4GAUSS);
    ok = ok && write_reg(lis3mdl::CTRL_REG4, lis3mdl::CTRL4_OMZ_UHP);
    ok = ok && write_reg(lis3mdl::CTRL_REG5, lis3mdl::CTRL5_BDU);
    ok = ok && write_reg(lis3mdl::CTRL_REG3, lis3mdl::CTRL3_POWER_DOWN);
    if (!ok) g_addr = 0;
    return ok;
#else
    return false;
#endif
}

bool mag_start() { return g_addr != 0 && write_reg(lis3mdl::CTRL_REG3, lis3mdl::CTRL3_CONTINUOUS); }

void mag_stop() {
    if (g_addr != 0) write_reg(lis3mdl::CTRL_REG3, lis3mdl::CTRL3_POWER_DOWN);
}

bool mag_read(int16_t out[3]) {
    static const uint8_t index[3] = HIP_MAG_AXIS_INDEX;
    static const int8_t sign[3] = HIP_MAG_AXIS_SIGN;
    uint8_t raw[6];
    if (g_addr == 0 || !read_regs(g_addr, lis3mdl::OUT_X_L, raw, 6)) return false;
    int16_t m[3];
    for (uint8_t i = 0; i < 3; i++) m[i] = (int16_t)(uint16_t)(raw[2 * i] | (raw[2 * i + 1] << 8));
    for (uint8_t i = 0; i < 3; i++) {
        int32_t v = sign[i] * (int32_t)m[index[i]];
        out[i] = (int16_t)(v > 32767 ? 32767 : v); /* -(-32768) saturates */
    }
    return true;
}
