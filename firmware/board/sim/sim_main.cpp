/*
 * A scripted session against the board layer (the sketch and the real core,
 * on fake hardware): connect, subscribe, TIME_SYNC, [SET_MAG 1,] START, 5 s
 * of streaming, STOP, two malformed requests, disconnect, then 11 minutes
 * unconnected (the firmware must switch itself off). check_sim.py reads the
 * log. Usage: sim [6d|9d]
 */
#include <stdio.h>
#include <string.h>

#include "sim.h"

void setup();
void loop();

/* at least one pass of loop(), then on until t_us */
static void run_for(uint64_t us) {
    uint64_t end = g_sim_us + us;
    do loop();
    while (g_sim_us < end);
}

static void send(const uint8_t *req, uint16_t len) {
    printf("W %llu ", (unsigned long long)g_sim_us);
    for (uint16_t i = 0; i < len; i++) printf("%02x", req[i]);
    printf("\n");
    sim_write_control(req, len);
}

int main(int argc, char **argv) {
    bool nine = argc > 1 && strcmp(argv[1], "9d") == 0;
    sim_set_mag_present(nine);
    if (setjmp(g_system_off) != 0) return 0; /* switched itself off: expected at the end */

    setup();
    run_for(100000);
    sim_connect(247);
    run_for(200000);
    sim_subscribe();
    const uint8_t time_sync[] = {0x06, 1, 0x78, 0x56, 0x34, 0x12};
    send(time_sync, sizeof time_sync);
    run_for(10000);
    if (nine) {
        const uint8_t set_mag[] = {0x08, 2, 1};
        send(set_mag, sizeof set_mag);
        run_for(10000);
    }
    const uint8_t start[] = {0x01, 3};
    send(start, sizeof start);
    run_for(5000000);
    const uint8_t stop[] = {0x02, 4};
    send(stop, sizeof stop);
    run_for(300000);
    const uint8_t unknown[] = {0x09, 5};
    send(unknown, sizeof unknown);
    run_for(1000);
    const uint8_t short_rate[] = {0x03, 6, 0xd0};
    send(short_rate, sizeof short_rate);
    run_for(100000);
    sim_disconnect();
    run_for(11ull * 60 * 1000000);
    printf("END no System OFF after 11 min unconnected\n");
    return 1;
}
