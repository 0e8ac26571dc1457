#include "led.h"

#include <Arduino.h>

#include "board_pins.h"

namespace {

const uint8_t RED = 1, GREEN = 2, BLUE = 4, WHITE = RED | GREEN | BLUE;

struct Blink {
    uint8_t colour;
    uint16_t period_ms; /* the pattern repeats */
    uint8_t flashes;    /* at the start of each period */
    uint16_t on_ms;
    uint16_t gap_ms;    /* between flashes */
};

/* indexed by LedPattern */
const Blink BLINKS[] = {
    {BLUE, 2000, 1, 30, 0},    /* advertising */
    {GREEN, 2000, 1, 30, 0},   /* connected, idle */
    {GREEN, 2000, 2, 30, 150}, /* streaming */
    {RED, 2000, 3, 30, 150},   /* fault */
    {WHITE, 200, 1, 100, 0},   /* identify */
};

void show(uint8_t colour) {
    digitalWrite(LED_RED, (colour & RED) ? LOW : HIGH);
    digitalWrite(LED_GREEN, (colour & GREEN) ? LOW : HIGH);
    digitalWrite(LED_BLUE, (colour & BLUE) ? LOW : HIGH);
}

}  // namespace

void led_begin() {
    pinMode(LED_RED, OUTPUT);
    pinMode(LED_GREEN, OUTPUT);
    pinMode(LED_BLUE, OUTPUT);
    show(0);
}

void led_off() { show(0); }

void led_boot_flash() {
    show(WHITE);
    delay(300);
    show(0);
}

uint32_t led_update(LedPattern pattern, bool low_battery, uint32_t now_ms) {
    const Blink &b = BLINKS[pattern];
    uint8_t colour = b.colour;
    if (low_battery && (pattern == LED_ADVERTISING || pattern == LED_CONNECTED || pattern == LED_STREAMING))
        colour = RED;
    uint32_t t = now_ms % b.period_ms;
    uint32_t step = (uint32_t)b.on_ms + b.gap_ms;
    for (uint8_t k = 0; k < b.flashes; k++) {
        uint32_t start = k * step, end = start + b.on_ms;
        if (t < start) { /* dark before flash k */
            show(0);
            return start - t;
        }
        if (t < end) { /* inside flash k */
            show(colour);
            return end - t;
        }
    }
    show(0); /* dark until the next period */
    return b.period_ms - t;
}
