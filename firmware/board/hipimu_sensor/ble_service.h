/*
 * The hipimu GATT server on Adafruit Bluefruit (PROTOCOL.md, "GATT"): the
 * hipimu service (data: notify, control: write + notify, config: read),
 * Battery Service and Device Information.
 *
 * Threading: Bluefruit runs its callbacks in its own FreeRTOS tasks. They
 * only record what happened (connection edges, control writes into a small
 * mailbox) and wake loop() (power_wake); everything that touches the core
 * or notifies runs in loop().
 */
#ifndef HIPIMU_BLE_SERVICE_H
#define HIPIMU_BLE_SERVICE_H

#include <stddef.h>
#include <stdint.h>

/* Longest request kept; a longer write is passed on as 33 bytes so that the
 * core still answers ERR_BAD_LENGTH (no request needs more than 6). */
#define HIP_BLE_REQUEST_MAX 33u

/* Set up the stack, the services and advertising, and start advertising.
 * name: "hipimu-xxxx"; serial: the device id as 16 hex digits. */
void ble_begin(const char *name, const char *serial, const uint8_t *config, size_t config_len);

bool ble_connected();
uint16_t ble_mtu(); /* negotiated ATT MTU; 23 when not connected */

/* Connection edges since the last call (each reported once). */
bool ble_take_connected();
bool ble_take_disconnected();

/* Ask the central for 2M PHY, data length extension, MTU 247 and a 15 ms
 * interval. Call from loop() after ble_take_connected(). */
void ble_request_link_params();

/* The oldest control write not yet handled. false: none waiting. */
bool ble_next_request(uint8_t *req, size_t *len);

bool ble_notify_response(const uint8_t *resp, size_t len);
bool ble_data_notify_enabled();
bool ble_notify_data(const uint8_t *packet, size_t len);

void ble_set_config(const uint8_t *config, size_t len);
void ble_set_battery(uint8_t percent); /* BAS value, notified if subscribed */

void ble_stop_advertising();

#endif /* HIPIMU_BLE_SERVICE_H */
