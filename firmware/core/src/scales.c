/*
 * Physical scales of the raw counts (PROTOCOL.md, config characteristic).
 * Datasheet sensitivities, converted at compile time (no double at run time):
 *   LSM6DS3TR-C accelerometer [mg/LSB]: 0.061 (+-2 g), 0.122 (4), 0.244 (8), 0.488 (16)
 *   LSM6DS3TR-C gyroscope  [mdps/LSB]: 4.375 (+-125 dps), 8.75 (250), 17.5 (500),
 *                                      35 (1000), 70 (2000)
 *   LIS3MDL at +-4 gauss: 6842 LSB/gauss = 100 / 6842 uT/LSB
 *   LIS2MDL: 1.5 mgauss/LSB = 0.15 uT/LSB
 */
#include "hipimu_core.h"

#define STANDARD_GRAVITY_M_S2 9.80665
#define PI 3.14159265358979323846
#define MG_TO_M_S2(mg) ((float)((mg) * 1e-3 * STANDARD_GRAVITY_M_S2))
#define MDPS_TO_RAD_S(mdps) ((float)((mdps) * 1e-3 * PI / 180.0))

float hip_acc_scale_m_s2(uint8_t acc_range_g)
{
    switch (acc_range_g) {
    case 2u: return MG_TO_M_S2(0.061);
    case 4u: return MG_TO_M_S2(0.122);
    case 8u: return MG_TO_M_S2(0.244);
    case 16u: return MG_TO_M_S2(0.488);
    default: return 0.0f;
    }
}

float hip_gyr_scale_rad_s(uint16_t gyr_range_dps)
{
    switch (gyr_range_dps) {
    case 125u: return MDPS_TO_RAD_S(4.375);
    case 250u: return MDPS_TO_RAD_S(8.75);
    case 500u: return MDPS_TO_RAD_S(17.5);
    case 1000u: return MDPS_TO_RAD_S(35.0);
    case 2000u: return MDPS_TO_RAD_S(70.0);
    default: return 0.0f;
    }
}

float hip_mag_scale_uT(uint8_t mag_part)
{
    switch (mag_part) {
    case 1u: return (float)(100.0 / 6842.0); /* LIS3MDL, +-4 gauss */
    case 2u: return 0.15f;                   /* LIS2MDL */
    case 3u: return 0.3f;                    /* BMM150: ~0.3 uT/LSB, its datasheet resolution */
    default: return 0.0f;
    }
}
