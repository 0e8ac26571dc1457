/* The simulated host and clock (fake_hw.cpp), used by sim_main.cpp. */
#ifndef HIPIMU_SIM_H
#define HIPIMU_SIM_H
#include <setjmp.h>
#include <stdint.h>

extern uint64_t g_sim_us;    /* simulated time since power-up */
extern jmp_buf g_system_off; /* sd_power_system_off() jumps here */
void sim_advance(uint64_t us);
void sim_set_mag_present(bool present);
void sim_connect(uint16_t mtu);
void sim_disconnect();
void sim_subscribe();
void sim_write_control(const uint8_t *req, uint16_t len);
#endif
