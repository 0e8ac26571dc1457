/* STUB (see Arduino.h): TwoWire as in the Adafruit nRF52 core's Wire.h. */
#ifndef HIPIMU_STUB_WIRE_H
#define HIPIMU_STUB_WIRE_H
#include <Arduino.h>
class TwoWire {
  public:
    void begin();
    void end();
    void setClock(uint32_t hz);
    void beginTransmission(uint8_t address);
    uint8_t endTransmission(bool stopBit);
    uint8_t endTransmission(void);
    uint8_t requestFrom(uint8_t address, size_t quantity, bool stopBit);
    uint8_t requestFrom(uint8_t address, size_t quantity);
    size_t write(uint8_t data);
    size_t write(const uint8_t *data, size_t quantity);
    int available(void);
    int read(void);
};
extern TwoWire Wire;
extern TwoWire Wire1;
#endif
