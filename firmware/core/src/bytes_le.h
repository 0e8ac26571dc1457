/*
 * Little-endian byte helpers shared by the core's encoders and decoders
 * (PROTOCOL.md: every multi-byte integer on the wire is little-endian;
 * floats are IEEE-754 binary32). Private to firmware/core/src.
 */
#ifndef HIPIMU_BYTES_LE_H
#define HIPIMU_BYTES_LE_H

#include <stdint.h>
#include <string.h>

static inline void put_u16_le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32_le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static inline void put_f32_le(uint8_t *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits); /* IEEE-754 binary32 on every target we build for */
    put_u32_le(p, bits);
}

static inline uint16_t get_u16_le(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif /* HIPIMU_BYTES_LE_H */
