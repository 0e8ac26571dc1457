#include "battery.h"

#include <Arduino.h>

#include "board_pins.h"

namespace {

const uint32_t ADC_FULL_SCALE_MV = 3000; /* AR_INTERNAL_3_0: 0.6 V reference, gain 1/5 */
const uint32_t ADC_MAX = 4095;           /* 12 bits */

/* Typical single-cell LiPo voltage at light load vs state of charge. */
struct Point {
    uint16_t mv;
    uint8_t percent;
};
const Point CURVE[] = {
    {4200, 100}, {4100, 90}, {4000, 80}, {3920, 70}, {3860, 60}, {3820, 50},
    {3790, 40},  {3760, 30}, {3730, 20}, {3690, 10}, {3600, 5},  {3300, 0},
};
const uint8_t CURVE_N = sizeof(CURVE) / sizeof(CURVE[0]);

}  // namespace

void battery_begin() {
    pinMode(VBAT_ENABLE, OUTPUT);
    digitalWrite(VBAT_ENABLE, LOW); /* never HIGH with a cell connected */
#if HIP_CHARGE_100MA
    pinMode(PIN_CHARGING_CURRENT, OUTPUT);
    digitalWrite(PIN_CHARGING_CURRENT, LOW); /* 100 mA */
#else
    pinMode(PIN_CHARGING_CURRENT, INPUT); /* high-Z: 50 mA */
#endif
    pinMode(HIP_PIN_CHARGE_STATUS, INPUT_PULLUP); /* open drain, LOW while charging */
    analogReference(AR_INTERNAL_3_0);
    analogReadResolution(12);
    analogSampleTime(40); /* the divider's source impedance is ~340 kOhm */
}

uint16_t battery_read_mv() {
    uint32_t sum = 0;
    for (uint8_t i = 0; i < 8; i++) sum += (uint32_t)analogRead(PIN_VBAT);
    uint32_t pin_mv = (sum / 8) * ADC_FULL_SCALE_MV / ADC_MAX;
    return (uint16_t)(pin_mv * HIP_VBAT_DIVIDER_NUM / HIP_VBAT_DIVIDER_DEN);
}

uint8_t battery_percent(uint16_t mv) {
    if (mv >= CURVE[0].mv) return 100;
    for (uint8_t i = 1; i < CURVE_N; i++) {
        if (mv >= CURVE[i].mv) { /* linear between CURVE[i] and CURVE[i-1] */
            uint32_t span_mv = CURVE[i - 1].mv - CURVE[i].mv;
            uint32_t span_pc = CURVE[i - 1].percent - CURVE[i].percent;
            return (uint8_t)(CURVE[i].percent + (mv - CURVE[i].mv) * span_pc / span_mv);
        }
    }
    return 0;
}

bool battery_charging() { return digitalRead(HIP_PIN_CHARGE_STATUS) == LOW; }
