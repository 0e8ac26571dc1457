/*
 * Device state defaults and the config characteristic (PROTOCOL.md,
 * "Config characteristic", 40 bytes, little-endian except device_id).
 */
#include <string.h>

#include "hipimu_core.h"
#include "bytes_le.h"

#define IMU_PART_LSM6DS3TRC 1u
#define STATUS_IMU_FOUND 0x01u
#define STATUS_MAG_FOUND 0x02u
#define STATUS_CHARGING 0x04u

void hip_device_init(hip_device *d)
{
    if (d == NULL) {
        return;
    }
    memset(d->device_id, 0, sizeof d->device_id);
    memset(d->fw_version, 0, sizeof d->fw_version);
    d->imu_part = IMU_PART_LSM6DS3TRC;
    d->mag_part = 0u;
    d->imu_ok = false;         /* the board sets these after probing the parts */
    d->mag_ok = false;
    d->charging = false;
    d->battery_percent = 0u;

    d->rate_hz = 208u;
    d->acc_range_g = 8u;
    d->gyr_range_dps = 1000u;
    d->mag_enabled = false;

    d->att_mtu = HIP_ATT_MTU_MIN;
    d->streaming = false;
    d->seq = 0u;
    d->identify_seconds = 0u;
    hip_fifo_init(&d->fifo);
}

size_t hip_encode_config(const hip_device *d, uint8_t *out, size_t cap)
{
    if (d == NULL || out == NULL || cap < HIP_CONFIG_SIZE) {
        return 0u;
    }
    uint32_t status = 0u;
    status |= d->imu_ok ? STATUS_IMU_FOUND : 0u;
    status |= d->mag_ok ? STATUS_MAG_FOUND : 0u;
    status |= d->charging ? STATUS_CHARGING : 0u;

    out[0] = (uint8_t)HIP_PROTOCOL_VERSION;
    memcpy(&out[1], d->fw_version, 3u);          /* major, minor, patch */
    memcpy(&out[4], d->device_id, 8u);           /* most significant byte first */
    out[12] = d->imu_part;
    out[13] = d->mag_part;
    put_u16_le(&out[14], (uint16_t)(d->rate_hz * 100u));  /* centi-Hz */
    out[16] = d->acc_range_g;
    out[17] = d->mag_enabled ? 1u : 0u;
    put_u16_le(&out[18], d->gyr_range_dps);
    put_f32_le(&out[20], hip_acc_scale_m_s2(d->acc_range_g));
    put_f32_le(&out[24], hip_gyr_scale_rad_s(d->gyr_range_dps));
    put_f32_le(&out[28], hip_mag_scale_uT(d->mag_part));
    put_u16_le(&out[32], d->att_mtu);
    out[34] = d->streaming ? 1u : 0u;
    out[35] = d->battery_percent;
    put_u32_le(&out[36], status);
    return HIP_CONFIG_SIZE;
}
