/*
 * Battery voltage (ADC through the XIAO's 1 MOhm / 510 kOhm divider) and the
 * BQ25101 charger's status pin.
 */
#ifndef HIPIMU_BATTERY_H
#define HIPIMU_BATTERY_H

#include <stdint.h>

/* Switch the divider in (P0.14 LOW, kept LOW: see board_pins.h), select the
 * charge current, configure the ADC. Call first in setup(). */
void battery_begin();

/* Cell voltage in mV (8 samples averaged). Reads high while charging. */
uint16_t battery_read_mv();

/* State of charge 0..100 from a LiPo discharge curve at light load. */
uint8_t battery_percent(uint16_t mv);

/* The charger reports charging (USB present and the cell not yet full). */
bool battery_charging();

#endif /* HIPIMU_BATTERY_H */
