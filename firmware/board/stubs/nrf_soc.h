/* STUB (see Arduino.h): the two SoftDevice SoC calls used (S140 nrf_soc.h). */
#ifndef HIPIMU_STUB_NRF_SOC_H
#define HIPIMU_STUB_NRF_SOC_H
#include <stdint.h>
#define NRF_SUCCESS 0
uint32_t sd_power_usbregstatus_get(uint32_t *p_usbregstatus);
uint32_t sd_power_system_off(void);
#endif
