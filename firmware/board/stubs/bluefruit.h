/*
 * STUB (see Arduino.h): the parts of Bluefruit52Lib the board layer uses,
 * signatures as in adafruit/Adafruit_nRF52_Arduino (BLECharacteristic.h,
 * BLEConnection.h, BLEPeriph.h, BLEAdvertising.h, services/BLEDis.h,
 * services/BLEBas.h, bluefruit.h).
 */
#ifndef HIPIMU_STUB_BLUEFRUIT_H
#define HIPIMU_STUB_BLUEFRUIT_H
#include <Arduino.h>

#define BLE_GATT_ATT_MTU_MAX 247
#define BLE_CONN_HANDLE_INVALID 0xFFFF
#define BLE_GAP_ADV_FLAGS_LE_ONLY_GENERAL_DISC_MODE 0x06
#define BLE_GAP_PHY_AUTO 0x00
#define BLE_GAP_PHY_2MBPS 0x02
enum { BANDWIDTH_AUTO = 0, BANDWIDTH_LOW, BANDWIDTH_NORMAL, BANDWIDTH_HIGH, BANDWIDTH_MAX };
enum CharsProperties {
    CHR_PROPS_BROADCAST = 1, CHR_PROPS_READ = 2, CHR_PROPS_WRITE_WO_RESP = 4,
    CHR_PROPS_WRITE = 8, CHR_PROPS_NOTIFY = 16, CHR_PROPS_INDICATE = 32
};
enum SecureMode_t { SECMODE_NO_ACCESS = 0x00, SECMODE_OPEN = 0x11 };
typedef int32_t err_t;

class BLEUuid {
  public:
    BLEUuid(uint16_t uuid16);
    BLEUuid(uint8_t const uuid128[16]);
};

class BLEService {
  public:
    BLEService(void);
    BLEService(BLEUuid bleuuid);
    virtual err_t begin(void);
};

class BLECharacteristic {
  public:
    typedef void (*write_cb_t)(uint16_t conn_hdl, BLECharacteristic *chr, uint8_t *data, uint16_t len);
    BLECharacteristic(BLEUuid bleuuid);
    void setProperties(uint8_t prop);
    void setPermission(SecureMode_t read_perm, SecureMode_t write_perm);
    void setMaxLen(uint16_t max_len);
    void setFixedLen(uint16_t fixed_len);
    void setWriteCallback(write_cb_t fp, bool useAdaCallback = true);
    virtual err_t begin(void);
    uint16_t write(const void *data, uint16_t len);
    bool notifyEnabled(uint16_t conn_hdl);
    bool notify(uint16_t conn_hdl, const void *data, uint16_t len);
};

class BLEDis : public BLEService {
  public:
    void setModel(const char *model);
    void setSerialNum(const char *serial_num);
    void setFirmwareRev(const char *firmware_rev);
    void setManufacturer(const char *manufacturer);
    virtual err_t begin(void);
};

class BLEBas : public BLEService {
  public:
    virtual err_t begin(void);
    bool write(uint8_t level);
    bool notify(uint16_t conn_hdl, uint8_t level);
};

class BLEConnection {
  public:
    uint16_t getMtu(void);
    bool requestDataLengthUpdate(const void *p_dl_params = NULL, void *p_dl_limitation = NULL);
    bool requestMtuExchange(uint16_t mtu);
    bool requestPHY(uint8_t phy = BLE_GAP_PHY_AUTO);
    bool requestConnectionParameter(uint16_t conn_interval, uint16_t slave_latency = 0, uint16_t sup_timeout = 400);
};

typedef void (*ble_connect_callback_t)(uint16_t conn_hdl);
typedef void (*ble_disconnect_callback_t)(uint16_t conn_hdl, uint8_t reason);

class BLEPeriph {
  public:
    bool setConnInterval(uint16_t min, uint16_t max);
    void setConnectCallback(ble_connect_callback_t fp);
    void setDisconnectCallback(ble_disconnect_callback_t fp);
};

class BLEAdvertisingData {
  public:
    bool addFlags(uint8_t flags);
    bool addName(void);
    bool addService(BLEService &service);
};

class BLEAdvertising : public BLEAdvertisingData {
  public:
    void setFastTimeout(uint16_t sec);
    void setInterval(uint16_t fast, uint16_t slow);
    void restartOnDisconnect(bool enable);
    bool start(uint16_t timeout = 0);
    bool stop(void);
};

class AdafruitBluefruit {
  public:
    BLEAdvertising Advertising;
    BLEAdvertisingData ScanResponse;
    BLEPeriph Periph;
    void configPrphBandwidth(uint8_t bw);
    bool begin(uint8_t prph_count = 1, uint8_t central_count = 0);
    void setName(const char *str);
    bool setTxPower(int8_t power);
    void autoConnLed(bool enabled);
    BLEConnection *Connection(uint16_t conn_hdl);
};
extern AdafruitBluefruit Bluefruit;
#endif
