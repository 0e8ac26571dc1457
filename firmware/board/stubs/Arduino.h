/*
 * STUB for a syntax check on a PC (../check_syntax.sh): just the declarations
 * the board layer uses, with the signatures of the Seeed nRF52 Boards core
 * (Adafruit nRF52 Arduino core) and its XIAO nRF52840 Sense variant. Not the
 * real headers; nothing here is compiled into the firmware.
 */
#ifndef HIPIMU_STUB_ARDUINO_H
#define HIPIMU_STUB_ARDUINO_H

#include <stddef.h>
#include <stdint.h>

#define HIGH 1
#define LOW 0
#define INPUT 0
#define OUTPUT 1
#define INPUT_PULLUP 2

/* variant.h of Seeed_XIAO_nRF52840_Sense */
#define LED_RED 11
#define LED_GREEN 13
#define LED_BLUE 12
#define VBAT_ENABLE 14
#define PIN_VBAT 32
#define PIN_CHARGING_CURRENT 22
#define PIN_LSM6DS3TR_C_POWER 15
#define PIN_LSM6DS3TR_C_INT1 18

enum eAnalogReference { AR_DEFAULT, AR_INTERNAL, AR_INTERNAL_3_0, AR_INTERNAL_2_4, AR_INTERNAL_1_8, AR_INTERNAL_1_2, AR_VDD4 };

void pinMode(uint32_t pin, uint32_t mode);
void digitalWrite(uint32_t pin, uint32_t value);
int digitalRead(uint32_t pin);
uint32_t analogRead(uint32_t pin);
void analogReference(eAnalogReference mode);
void analogReadResolution(int bits);
void analogSampleTime(uint8_t us);
typedef void (*voidFuncPtr)(void);
#define RISING 3
#define ISR_DEFERRED 0x10000u /* Adafruit core: run the handler in a task, not in the ISR */
#define digitalPinToInterrupt(p) (p)
int attachInterrupt(uint32_t pin, voidFuncPtr callback, uint32_t mode);
void detachInterrupt(uint32_t pin);
uint32_t millis(void);
void delay(uint32_t ms);

/* nrf.h (MDK): only the registers used */
typedef struct { volatile uint32_t DEVICEID[2]; } NRF_FICR_Type;
typedef struct {
    volatile uint32_t TASKS_START, TASKS_STOP, TASKS_CLEAR;
    volatile uint32_t COUNTER, PRESCALER;
} NRF_RTC_Type;
extern NRF_FICR_Type *NRF_FICR;
extern NRF_RTC_Type *NRF_RTC2;
#define POWER_USBREGSTATUS_VBUSDETECT_Msk (0x1UL << 0)

/* FreeRTOS, as the core provides it */
typedef void *SemaphoreHandle_t;
typedef uint32_t TickType_t;
typedef long BaseType_t;
SemaphoreHandle_t xSemaphoreCreateBinary(void);
BaseType_t xSemaphoreGive(SemaphoreHandle_t s);
BaseType_t xSemaphoreTake(SemaphoreHandle_t s, TickType_t ticks);
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))

#endif
