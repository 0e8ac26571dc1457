/*
 * Bare-metal start-up for the test programs on QEMU's mps2-an386 (Cortex-M4F):
 * vector table, Reset_Handler (copy .data, zero .bss, enable the FPU, run
 * main, exit through semihosting with main's status), and fault handlers that
 * report and exit with a failure instead of hanging.
 */
#include <stdint.h>
#include <stdlib.h>

/* From the linker script (mps2_an386.ld). */
extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[];

extern int main(void);
extern void initialise_monitor_handles(void); /* newlib librdimon: stdio over semihosting */
extern void __libc_init_array(void);          /* newlib: runs .preinit_array, _init, .init_array */

/* Linked with -nostartfiles (no crti.o / crtn.o): newlib's init/fini arrays
 * call these; there is nothing to do in them. */
void _init(void);
void _fini(void);
void _init(void)
{
}
void _fini(void)
{
}

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

typedef void (*handler)(void);

/* ARMv7-M vector table: initial SP, then the exceptions 1..15. */
typedef struct {
    uint32_t *initial_sp;
    handler exceptions[15];
} vector_table;

__attribute__((section(".isr_vector"), used)) const vector_table vectors = {
    __stack_top__,
    {
        Reset_Handler,   /* 1 Reset */
        Fault_Handler,   /* 2 NMI */
        Fault_Handler,   /* 3 HardFault */
        Fault_Handler,   /* 4 MemManage */
        Fault_Handler,   /* 5 BusFault */
        Fault_Handler,   /* 6 UsageFault */
        NULL, NULL, NULL, NULL,
        Default_Handler, /* 11 SVCall */
        Default_Handler, /* 12 DebugMon */
        NULL,
        Default_Handler, /* 14 PendSV */
        Default_Handler, /* 15 SysTick */
    },
};

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20) /* full access to the FPU (coprocessors 10, 11) */

#define SEMIHOSTING_SYS_WRITE0 0x04u
#define SEMIHOSTING_SYS_EXIT 0x18u
#define ADP_STOPPED_RUNTIME_ERROR 0x20023u /* QEMU exits with status 1 */

static void semihosting_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void Reset_Handler(void)
{
    /* The FPU first: the compiler may use its registers anywhere (-mfloat-abi=hard). */
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (uint32_t *src = __data_load__, *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0u;
    }

    initialise_monitor_handles();
    __libc_init_array();
    const int status = main();
    exit(status == 0 ? EXIT_SUCCESS : EXIT_FAILURE); /* flushes stdio, semihosting SYS_EXIT */
}

void Fault_Handler(void)
{
    semihosting_call(SEMIHOSTING_SYS_WRITE0, "FAULT: hard/bus/usage/memmanage fault or NMI\n");
    semihosting_call(SEMIHOSTING_SYS_EXIT, (const void *)ADP_STOPPED_RUNTIME_ERROR);
    for (;;) {
    }
}

void Default_Handler(void)
{
    semihosting_call(SEMIHOSTING_SYS_WRITE0, "FAULT: unexpected exception\n");
    semihosting_call(SEMIHOSTING_SYS_EXIT, (const void *)ADP_STOPPED_RUNTIME_ERROR);
    for (;;) {
    }
}
