/*
 * The RGB user LED (active LOW). Short flashes only: an LED that is on draws
 * a few mA, as much as the rest of the board. Patterns: hardware.md, "LED
 * and button". The charge LED next to the USB socket is driven by the
 * charger itself, not by firmware.
 */
#ifndef HIPIMU_LED_H
#define HIPIMU_LED_H

#include <stdint.h>

enum LedPattern {
    LED_ADVERTISING, /* blue flash every 2 s */
    LED_CONNECTED,   /* green flash every 2 s */
    LED_STREAMING,   /* green double flash every 2 s */
    LED_FAULT,       /* red triple flash every 2 s: the IMU does not answer */
    LED_IDENTIFY,    /* white, 5 Hz, for IDENTIFY's seconds */
};

void led_begin();
void led_off();
void led_boot_flash(); /* white 300 ms, at power-up (blocks) */

/* Show `pattern` at now_ms; low_battery turns blue/green flashes red.
 * Returns ms until the LED next changes (how long loop() may sleep). */
uint32_t led_update(LedPattern pattern, bool low_battery, uint32_t now_ms);

#endif /* HIPIMU_LED_H */
