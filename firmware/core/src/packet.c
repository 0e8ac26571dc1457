/*
 * Data packets (PROTOCOL.md, "Data packets" and "Batching and the MTU").
 *
 * offset 0  version_flags  bits 7-4 protocol version, bit 0 HIP_FLAG_MAG
 *        1  count          samples in the packet, 1 .. HIP_MAX_SAMPLES_PER_PACKET
 *        2  seq            packet sequence number
 *        3  dropped        samples lost just before the first one (saturated)
 *        4  t0_us          u32, device time of the first sample [us]
 *        8  samples        6 (or 9) int16 each: ax ay az gx gy gz [mx my mz]
 * Everything little-endian.
 */
#include "hipimu_core.h"
#include "bytes_le.h"

#define ATT_HEADER_SIZE 3u /* ATT opcode + handle in front of a notification's payload */

size_t hip_encode_packet(uint8_t *out, size_t cap, uint8_t seq, uint8_t dropped, uint32_t t0_us,
                         const int16_t *samples, uint8_t n, bool with_mag)
{
    if (out == NULL || samples == NULL || n == 0u || n > HIP_MAX_SAMPLES_PER_PACKET) {
        return 0u;
    }
    const size_t axes = with_mag ? 9u : 6u;
    const size_t sample_size = with_mag ? HIP_SAMPLE_SIZE_9D : HIP_SAMPLE_SIZE_6D;
    const size_t len = HIP_HEADER_SIZE + (size_t)n * sample_size;
    if (len > cap) {
        return 0u;
    }

    out[0] = (uint8_t)((HIP_PROTOCOL_VERSION << 4) | (with_mag ? HIP_FLAG_MAG : 0u));
    out[1] = n;
    out[2] = seq;
    out[3] = dropped;
    put_u32_le(&out[4], t0_us);
    for (size_t i = 0u; i < (size_t)n * axes; i++) {
        put_u16_le(&out[HIP_HEADER_SIZE + 2u * i], (uint16_t)samples[i]); /* two's complement */
    }
    return len;
}

uint8_t hip_samples_per_packet(uint16_t att_mtu, bool with_mag)
{
    if (att_mtu < HIP_ATT_MTU_MIN) {
        return 0u; /* not a valid ATT MTU */
    }
    const uint16_t mtu = (att_mtu > HIP_ATT_MTU_MAX) ? (uint16_t)HIP_ATT_MTU_MAX : att_mtu;
    const uint32_t payload = (uint32_t)mtu - ATT_HEADER_SIZE; /* bytes, >= 20 */
    const uint32_t sample_size = with_mag ? HIP_SAMPLE_SIZE_9D : HIP_SAMPLE_SIZE_6D;
    const uint32_t n = (payload - HIP_HEADER_SIZE) / sample_size;
    return (uint8_t)((n > HIP_MAX_SAMPLES_PER_PACKET) ? HIP_MAX_SAMPLES_PER_PACKET : n);
}
