/*
 * Optional LIS3MDL magnetometer (e.g. Adafruit 4479 breakout) on the header
 * I2C bus, register level. Runs continuously at 80 Hz, ultra-high
 * performance, +-4 gauss (6842 LSB/gauss = 0.014616 uT/LSB); the board
 * attaches the latest reading to every IMU sample (sample and hold).
 */
#ifndef HIPIMU_MAG_LIS3MDL_H
#define HIPIMU_MAG_LIS3MDL_H

#include <stdint.h>

namespace lis3mdl {

const uint8_t I2C_ADDR_LOW = 0x1C;  /* SDO/SA1 to GND: Adafruit 4479 default */
const uint8_t I2C_ADDR_HIGH = 0x1E; /* SDO/SA1 to VDD */
const uint8_t WHO_AM_I_VALUE = 0x3D;

const uint8_t WHO_AM_I = 0x0F;
const uint8_t CTRL_REG1 = 0x20; /* TEMP_EN, OM[1:0] (x/y mode), DO[2:0] (rate), FAST_ODR, ST */
const uint8_t CTRL_REG2 = 0x21; /* FS[1:0] bits 6:5, REBOOT, SOFT_RST */
const uint8_t CTRL_REG3 = 0x22; /* MD[1:0]: 00 continuous, 11 power-down */
const uint8_t CTRL_REG4 = 0x23; /* OMZ[1:0] bits 3:2 (z mode) */
const uint8_t CTRL_REG5 = 0x24; /* BDU bit 6 */
const uint8_t OUT_X_L = 0x28;   /* x, y, z little-endian */
const uint8_t AUTO_INCREMENT = 0x80; /* I2C: set in the register address for bursts */

const uint8_t CTRL1_OM_UHP = 0x60;   /* x/y ultra-high performance */
const uint8_t CTRL1_DO_80HZ = 0x1C;
const uint8_t CTRL2_FS_4GAUSS = 0x00;
const uint8_t CTRL2_SOFT_RST = 0x04;
const uint8_t CTRL3_CONTINUOUS = 0x00;
const uint8_t CTRL3_POWER_DOWN = 0x03;
const uint8_t CTRL4_OMZ_UHP = 0x0C;
const uint8_t CTRL5_BDU = 0x40;

}  // namespace lis3mdl

/* Probe both addresses; configure and power down. false: none found (the bus
 * is released again). */
bool mag_begin();
bool mag_start();  /* continuous conversion */
void mag_stop();   /* power-down (~1 uA) */
/* Latest field in the IMU's axes (HIP_MAG_AXIS_*), raw counts. */
bool mag_read(int16_t out[3]);

#endif /* HIPIMU_MAG_LIS3MDL_H */
