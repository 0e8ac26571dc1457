/*
 * Device clock source, USB detection and System OFF.
 *
 * The device clock (PROTOCOL.md) is RTC2 counting the 32.768 kHz crystal
 * (prescaler 0, 24 bits, wraps every 512 s); the core extends it to 64-bit
 * microseconds (hip_clock_now_us). RTC0 belongs to the SoftDevice and RTC1 to
 * FreeRTOS's tick, RTC2 is free in the Adafruit-based core.
 */
#ifndef HIPIMU_POWER_H
#define HIPIMU_POWER_H

#include <stdint.h>

void power_begin();            /* start RTC2, create the wake semaphore */
uint32_t power_rtc_ticks();    /* raw 24-bit counter */
bool power_usb_present();      /* VBUS detected (plugged in: charging, never System OFF) */

/* loop() sleeps in power_wait() (FreeRTOS tickless idle: System ON, CPU
 * off) until the timeout or until power_wake() is called from a task
 * context: Bluefruit's callbacks and the IMU's deferred interrupt. */
void power_wait(uint32_t ms);
void power_wake();

/* System OFF (~ a few uA, RAM lost). Wakes as a reset: the reset button, or
 * plugging in USB. Switch the LEDs, IMU and magnetometer off first. */
void power_system_off();

#endif /* HIPIMU_POWER_H */
