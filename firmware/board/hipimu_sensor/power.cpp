#include "power.h"

#include <Arduino.h>
#include <nrf_soc.h>

namespace {
SemaphoreHandle_t g_wake = NULL;
}

void power_begin() {
    g_wake = xSemaphoreCreateBinary();
    NRF_RTC2->TASKS_STOP = 1;
    NRF_RTC2->PRESCALER = 0; /* 32768 Hz: one tick = 30.52 us */
    NRF_RTC2->TASKS_CLEAR = 1;
    NRF_RTC2->TASKS_START = 1; /* no interrupts: loop() reads it often enough */
}

uint32_t power_rtc_ticks() { return NRF_RTC2->COUNTER & 0x00FFFFFFu; }

void power_wait(uint32_t ms) {
    if (ms == 0 || g_wake == NULL) return;
    xSemaphoreTake(g_wake, pdMS_TO_TICKS(ms));
}

void power_wake() {
    if (g_wake != NULL) xSemaphoreGive(g_wake);
}

bool power_usb_present() {
    uint32_t status = 0;
    /* POWER is the SoftDevice's: ask it rather than reading the register */
    if (sd_power_usbregstatus_get(&status) != NRF_SUCCESS) return false;
    return (status & POWER_USBREGSTATUS_VBUSDETECT_Msk) != 0;
}

void power_system_off() {
    sd_power_system_off();
    for (;;) {
        /* not reached on hardware; under a debugger System OFF is emulated */
    }
}
