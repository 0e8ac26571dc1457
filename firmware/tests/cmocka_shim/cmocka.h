/*
 * The subset of cmocka's API the hipimu tests use, for targets without
 * cmocka (the Cortex-M4F under QEMU): output over stdio (semihosting there),
 * a failed assertion longjmps out of the test. The host build uses the real
 * libcmocka; the test sources are the same.
 *
 * Supported: cmocka_unit_test, cmocka_unit_test_setup_teardown,
 * cmocka_run_group_tests, cmocka_run_group_tests_name, assert_true,
 * assert_false, assert_int_equal, assert_int_not_equal, assert_in_range,
 * assert_float_equal, assert_memory_equal, assert_memory_not_equal,
 * assert_null, assert_non_null, assert_ptr_equal, assert_string_equal, fail,
 * fail_msg, print_message.
 *
 * Header-only: include it in exactly one translation unit per program.
 */
#ifndef HIPIMU_CMOCKA_SHIM_H
#define HIPIMU_CMOCKA_SHIM_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uintmax_t LargestIntegralType;
typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f) { #f, f, NULL, NULL, NULL }
#define cmocka_unit_test_setup_teardown(f, setup, teardown) { #f, f, setup, teardown, NULL }

#define cmocka_run_group_tests(tests, group_setup, group_teardown) \
    cm_shim_run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]), group_setup, group_teardown)
#define cmocka_run_group_tests_name(name, tests, group_setup, group_teardown) \
    cm_shim_run_group(name, tests, sizeof(tests) / sizeof((tests)[0]), group_setup, group_teardown)

static jmp_buf cm_shim_jump;

static inline void cm_shim_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[   LINE   ] --- %s:%d: error: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    longjmp(cm_shim_jump, 1);
}

#define print_message(...) printf(__VA_ARGS__)
#define fail() cm_shim_fail(__FILE__, __LINE__, "fail()")
#define fail_msg(...) cm_shim_fail(__FILE__, __LINE__, __VA_ARGS__)

#define assert_true(c) \
    ((c) ? (void)0 : cm_shim_fail(__FILE__, __LINE__, "%s", #c))
#define assert_false(c) \
    (!(c) ? (void)0 : cm_shim_fail(__FILE__, __LINE__, "!(%s)", #c))

/* cmocka compares integers as LargestIntegralType; so do we, printed both ways. */
static inline void cm_shim_int_equal(LargestIntegralType a, LargestIntegralType b, int want_equal,
                              const char *file, int line)
{
    if ((a == b) != (want_equal != 0)) {
        cm_shim_fail(file, line, "%lld (%#llx) %s %lld (%#llx)", (long long)a, (unsigned long long)a,
                     want_equal ? "!=" : "==", (long long)b, (unsigned long long)b);
    }
}
#define assert_int_equal(a, b) \
    cm_shim_int_equal((LargestIntegralType)(a), (LargestIntegralType)(b), 1, __FILE__, __LINE__)
#define assert_int_not_equal(a, b) \
    cm_shim_int_equal((LargestIntegralType)(a), (LargestIntegralType)(b), 0, __FILE__, __LINE__)

static inline void cm_shim_in_range(LargestIntegralType v, LargestIntegralType lo, LargestIntegralType hi,
                             const char *file, int line)
{
    if (v < lo || v > hi) {
        cm_shim_fail(file, line, "%llu is not within the range %llu-%llu", (unsigned long long)v,
                     (unsigned long long)lo, (unsigned long long)hi);
    }
}
#define assert_in_range(v, lo, hi)                                                         \
    cm_shim_in_range((LargestIntegralType)(v), (LargestIntegralType)(lo), (LargestIntegralType)(hi), \
                     __FILE__, __LINE__)

static inline void cm_shim_float_equal(float a, float b, float eps, const char *file, int line)
{
    const float diff = (a > b) ? a - b : b - a;
    if (!(diff <= eps)) {
        cm_shim_fail(file, line, "%g != %g (epsilon %g)", (double)a, (double)b, (double)eps);
    }
}
#define assert_float_equal(a, b, eps) \
    cm_shim_float_equal((float)(a), (float)(b), (float)(eps), __FILE__, __LINE__)

static inline void cm_shim_memory(const void *a, const void *b, size_t n, int want_equal, const char *file,
                           int line)
{
    const unsigned char *pa = (const unsigned char *)a;
    const unsigned char *pb = (const unsigned char *)b;
    if (a == NULL || b == NULL) {
        cm_shim_fail(file, line, "memory compare with a NULL pointer");
        return;
    }
    if (want_equal) {
        for (size_t i = 0; i < n; i++) {
            if (pa[i] != pb[i]) {
                cm_shim_fail(file, line, "difference at offset %u: 0x%02x != 0x%02x", (unsigned)i,
                             (unsigned)pa[i], (unsigned)pb[i]);
            }
        }
    } else if (memcmp(a, b, n) == 0) {
        cm_shim_fail(file, line, "%u bytes are equal", (unsigned)n);
    }
}
#define assert_memory_equal(a, b, n) cm_shim_memory((a), (b), (size_t)(n), 1, __FILE__, __LINE__)
#define assert_memory_not_equal(a, b, n) cm_shim_memory((a), (b), (size_t)(n), 0, __FILE__, __LINE__)

#define assert_null(p) \
    (((p) == NULL) ? (void)0 : cm_shim_fail(__FILE__, __LINE__, "%s is not NULL", #p))
#define assert_non_null(p) \
    (((p) != NULL) ? (void)0 : cm_shim_fail(__FILE__, __LINE__, "%s is NULL", #p))
#define assert_ptr_equal(a, b) \
    (((const void *)(a) == (const void *)(b)) ? (void)0 : cm_shim_fail(__FILE__, __LINE__, "%s != %s", #a, #b))
#define assert_string_equal(a, b) \
    ((strcmp((a), (b)) == 0) ? (void)0 : cm_shim_fail(__FILE__, __LINE__, "\"%s\" != \"%s\"", (a), (b)))

/* Runs one test; returns 1 if it passed. `volatile`: survives the longjmp. */
static inline int cm_shim_run_one(const struct CMUnitTest *t)
{
    void *volatile state = t->initial_state;
    volatile int ok = 1;
    printf("[ RUN      ] %s\n", t->name);
    if (setjmp(cm_shim_jump) == 0) {
        if (t->setup_func != NULL && t->setup_func((void **)&state) != 0) {
            printf("[  ERROR   ] %s: setup failed\n", t->name);
            ok = 0;
        } else {
            t->test_func((void **)&state);
        }
    } else {
        ok = 0;
    }
    if (t->teardown_func != NULL && t->teardown_func((void **)&state) != 0) {
        printf("[  ERROR   ] %s: teardown failed\n", t->name);
        ok = 0;
    }
    printf(ok ? "[       OK ] %s\n" : "[  FAILED  ] %s\n", t->name);
    return ok;
}

/* Returns the number of failed tests, as cmocka does. */
static inline int cm_shim_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                             CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    void *group_state = NULL;
    unsigned passed = 0u;
    unsigned failed = 0u;
    printf("[==========] Running %u test(s) of %s.\n", (unsigned)n, name);
    if (group_setup != NULL && group_setup(&group_state) != 0) {
        printf("[  ERROR   ] %s: group setup failed\n", name);
        printf("0 passed, %u failed\n", (unsigned)n);
        return (int)n;
    }
    for (size_t i = 0; i < n; i++) {
        struct CMUnitTest t = tests[i];
        if (t.initial_state == NULL) {
            t.initial_state = group_state;
        }
        if (cm_shim_run_one(&t)) {
            passed++;
        } else {
            failed++;
        }
    }
    if (group_teardown != NULL && group_teardown(&group_state) != 0) {
        printf("[  ERROR   ] %s: group teardown failed\n", name);
        failed++;
    }
    printf("[==========] %s: %u passed, %u failed\n", name, passed, failed);
    printf("%u passed, %u failed\n", passed, failed);
    return (int)failed;
}

#endif /* HIPIMU_CMOCKA_SHIM_H */
