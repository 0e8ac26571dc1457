/*
 * Seeed Studio XIAO nRF52840 Sense: pins and board constants.
 *
 * Arduino pin numbers are those of the "Seeed nRF52 Boards" core (the
 * Adafruit-based, non-mbed one), variant Seeed_XIAO_nRF52840_Sense; the nRF
 * port/pin is in each comment. Where the variant defines a name we use it.
 */
#ifndef HIPIMU_BOARD_PINS_H
#define HIPIMU_BOARD_PINS_H

#include <Arduino.h>

/* Firmware version reported in the config characteristic and in DIS. */
#define HIP_FW_MAJOR 0
#define HIP_FW_MINOR 1
#define HIP_FW_PATCH 0
#define HIP_FW_STRING "0.1.0"
#define HIP_MODEL_STRING "XIAO nRF52840 Sense"

/* RGB user LED, active LOW. */
#ifndef LED_RED
#define LED_RED 11   /* P0.26 */
#define LED_GREEN 13 /* P0.30 */
#define LED_BLUE 12  /* P0.06 */
#endif

/* Battery divider (1 MOhm / 510 kOhm) on P0.31, switched in by P0.14 LOW.
 * Seeed's advice: keep P0.14 LOW (never HIGH while a cell is connected, P0.31
 * would then see the cell voltage). It costs ~2.8 uA. */
#ifndef VBAT_ENABLE
#define VBAT_ENABLE 14 /* P0.14 */
#endif
#ifndef PIN_VBAT
#define PIN_VBAT 32 /* P0.31, AIN7 */
#endif
#define HIP_VBAT_DIVIDER_NUM 1510u /* V_bat = V_pin * 1510 / 510 */
#define HIP_VBAT_DIVIDER_DEN 510u

/* BQ25101 charger: P0.13 selects the charge current (LOW: 100 mA, high-Z:
 * 50 mA); P0.17 is ~CHG (open drain, LOW while charging). */
#ifndef PIN_CHARGING_CURRENT
#define PIN_CHARGING_CURRENT 22 /* P0.13 */
#endif
#define HIP_PIN_CHARGE_STATUS 23 /* P0.17 */
/* 1: 100 mA (for cells >= 200 mAh), 0: 50 mA (150 mAh cells). */
#ifndef HIP_CHARGE_100MA
#define HIP_CHARGE_100MA 1
#endif

/* On-board LSM6DS3TR-C: its own I2C bus (Wire1: SDA P0.07, SCL P0.27), its
 * supply switched by P1.08 (HIGH = on), INT1 on P0.11 (FIFO threshold). */
#ifndef PIN_LSM6DS3TR_C_POWER
#define PIN_LSM6DS3TR_C_POWER 15 /* P1.08 */
#endif
#ifndef PIN_LSM6DS3TR_C_INT1
#define PIN_LSM6DS3TR_C_INT1 18 /* P0.11 */
#endif
#define HIP_IMU_WIRE Wire1

/* Optional LIS3MDL breakout (e.g. Adafruit 4479) on the header I2C (Wire):
 * SDA D4 (P0.04), SCL D5 (P0.05), VIN 3V3, GND. Set to 0 to skip probing. */
#ifndef HIP_WITH_MAG
#define HIP_WITH_MAG 1
#endif
#define HIP_MAG_WIRE Wire

/* How the LIS3MDL's axes map onto the IMU's (the wire's sensor frame):
 * sensor axis i of the sample = sign[i] * mag axis index[i]. The default is
 * identity: mount the breakout flat, component side up, with its silk-screen
 * X and Y arrows parallel to the XIAO IMU's X and Y (hardware.md, "9D").
 * Change both lines if you mount it differently. */
#define HIP_MAG_AXIS_INDEX {0, 1, 2}
#define HIP_MAG_AXIS_SIGN {1, 1, 1}

/* Timing. */
#define HIP_IMU_POLL_MS 40u            /* streaming: read the FIFO on INT1 (~20 ms), at least every 40 ms */
#define HIP_IMU_SETTLE_US 100000u      /* drop the first 100 ms after START (gyro start-up) */
#define HIP_BATTERY_PERIOD_MS 30000u   /* battery voltage every 30 s */
#define HIP_ADVERTISE_OFF_MS 600000u   /* System OFF after 10 min unconnected on battery */
#define HIP_BATTERY_LOW_PERCENT 15u    /* red LED pattern below this */
#define HIP_BATTERY_CUTOFF_MV 3300u    /* System OFF below this (not charging), cell protection */

#endif /* HIPIMU_BOARD_PINS_H */
