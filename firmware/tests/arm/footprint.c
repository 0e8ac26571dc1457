/* Not a test: its bss, printed by `make arm-test`, is the RAM one device's
 * state (hip_device with its sample FIFO) takes on the Cortex-M4F. */
#include "hipimu_core.h"

hip_device hip_footprint_device;
