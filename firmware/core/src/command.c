/*
 * Control characteristic (PROTOCOL.md, "Commands"): request
 * `opcode, token, arguments`, response `0x80 | opcode, token, status, payload`.
 * Every request gets exactly one response; a failed command changes nothing.
 * Check order (first failure answers): empty write, opcode, length, argument
 * values, then state (busy, sensor, MTU).
 */
#include "hipimu_core.h"
#include "bytes_le.h"

#define RESPONSE_FLAG 0x80u
#define REQUEST_HEADER_SIZE 2u /* opcode, token */

/* Bytes of a request with this opcode, opcode and token included; 0: unknown. */
static size_t request_size(uint8_t opcode)
{
    switch (opcode) {
    case HIP_OP_START: return REQUEST_HEADER_SIZE;
    case HIP_OP_STOP: return REQUEST_HEADER_SIZE;
    case HIP_OP_SET_RATE: return REQUEST_HEADER_SIZE + 2u;      /* rate_hz u16 */
    case HIP_OP_SET_RANGES: return REQUEST_HEADER_SIZE + 3u;    /* acc u8, gyr u16 */
    case HIP_OP_IDENTIFY: return REQUEST_HEADER_SIZE + 1u;      /* seconds u8 */
    case HIP_OP_TIME_SYNC: return REQUEST_HEADER_SIZE + 4u;     /* host_nonce u32 */
    case HIP_OP_RESET_DROPPED: return REQUEST_HEADER_SIZE;
    case HIP_OP_SET_MAG: return REQUEST_HEADER_SIZE + 1u;       /* enabled u8 */
    default: return 0u;
    }
}

static bool valid_rate_hz(uint16_t rate_hz)
{
    return rate_hz == 52u || rate_hz == 104u || rate_hz == 208u;
}

static bool valid_acc_range_g(uint8_t g)
{
    return g == 2u || g == 4u || g == 8u || g == 16u;
}

static bool valid_gyr_range_dps(uint16_t dps)
{
    return dps == 125u || dps == 250u || dps == 500u || dps == 1000u || dps == 2000u;
}

static enum hip_status start(hip_device *d)
{
    if (d->streaming) {
        return HIP_OK; /* idempotent: seq and FIFO go on */
    }
    if (!d->imu_ok || (d->mag_enabled && !d->mag_ok)) {
        return HIP_ERR_NO_SENSOR;
    }
    if (hip_samples_per_packet(d->att_mtu, d->mag_enabled) == 0u) {
        return HIP_ERR_MTU_TOO_SMALL;
    }
    hip_fifo_init(&d->fifo);
    d->seq = 0u;
    d->streaming = true;
    return HIP_OK;
}

/* Handles a request of the right length; writes the payload, if any, to `payload`. */
static enum hip_status execute(hip_device *d, uint8_t opcode, const uint8_t *arg, uint64_t now_us,
                               uint8_t *payload, size_t *payload_len)
{
    switch (opcode) {
    case HIP_OP_START:
        return start(d);

    case HIP_OP_STOP:
        d->streaming = false;
        return HIP_OK;

    case HIP_OP_SET_RATE: {
        const uint16_t rate_hz = get_u16_le(&arg[0]);
        if (!valid_rate_hz(rate_hz)) {
            return HIP_ERR_BAD_VALUE;
        }
        if (d->streaming) {
            return HIP_ERR_BUSY;
        }
        d->rate_hz = rate_hz;
        return HIP_OK;
    }

    case HIP_OP_SET_RANGES: {
        const uint8_t acc_g = arg[0];
        const uint16_t gyr_dps = get_u16_le(&arg[1]);
        if (!valid_acc_range_g(acc_g) || !valid_gyr_range_dps(gyr_dps)) {
            return HIP_ERR_BAD_VALUE;
        }
        if (d->streaming) {
            return HIP_ERR_BUSY;
        }
        d->acc_range_g = acc_g;
        d->gyr_range_dps = gyr_dps;
        return HIP_OK;
    }

    case HIP_OP_IDENTIFY: {
        const uint8_t seconds = arg[0];
        if (seconds < 1u || seconds > 30u) {
            return HIP_ERR_BAD_VALUE;
        }
        d->identify_seconds = seconds;
        return HIP_OK;
    }

    case HIP_OP_TIME_SYNC:
        put_u32_le(&payload[0], get_u32_le(&arg[0]));            /* host_nonce, echoed */
        put_u32_le(&payload[4], (uint32_t)(now_us & 0xFFFFFFFFu)); /* device_time_us */
        *payload_len = 8u;
        return HIP_OK;

    case HIP_OP_RESET_DROPPED:
        put_u32_le(&payload[0], d->fifo.dropped_total);
        *payload_len = 4u;
        d->fifo.dropped_total = 0u;
        d->seq = 0u;
        return HIP_OK;

    case HIP_OP_SET_MAG: {
        const uint8_t enabled = arg[0];
        if (enabled > 1u) {
            return HIP_ERR_BAD_VALUE;
        }
        if (d->streaming) {
            return HIP_ERR_BUSY;
        }
        if (enabled == 1u && !d->mag_ok) {
            return HIP_ERR_NO_SENSOR;
        }
        d->mag_enabled = (enabled == 1u);
        return HIP_OK;
    }

    default:
        return HIP_ERR_UNKNOWN_OPCODE; /* not reached: checked by request_size */
    }
}

size_t hip_handle_command(hip_device *d, const uint8_t *req, size_t len, uint64_t now_us,
                          uint8_t *resp, size_t resp_cap)
{
    if (d == NULL || resp == NULL || resp_cap < HIP_RESPONSE_MAX) {
        return 0u;
    }
    if (req == NULL) {
        len = 0u;
    }
    const uint8_t opcode = (len >= 1u) ? req[0] : 0u;
    const uint8_t token = (len >= 2u) ? req[1] : 0u; /* a 1-byte request has none: 0 */
    const size_t needed = request_size(opcode);

    enum hip_status status;
    size_t payload_len = 0u;
    if (len == 0u) {
        status = HIP_ERR_BAD_LENGTH;
    } else if (needed == 0u) {
        status = HIP_ERR_UNKNOWN_OPCODE;
    } else if (len != needed) {
        status = HIP_ERR_BAD_LENGTH;
    } else {
        status = execute(d, opcode, &req[REQUEST_HEADER_SIZE], now_us,
                         &resp[HIP_RESPONSE_HEADER_SIZE], &payload_len);
    }
    if (status != HIP_OK) {
        payload_len = 0u; /* errors carry no payload */
    }
    resp[0] = (uint8_t)(RESPONSE_FLAG | opcode);
    resp[1] = token;
    resp[2] = (uint8_t)status;
    return HIP_RESPONSE_HEADER_SIZE + payload_len;
}
