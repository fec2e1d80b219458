/* SPDX-License-Identifier: MIT */
/*
 * test.h - the test runner every test program links with.
 *
 * A test file defines cases with TEST(name) { ... } and gets main() from tests/runner.c.
 * Each case runs in its own process (fork) with a time limit, so a crash or a hang fails
 * that case alone. A failed check prints the expression, both values and the location.
 *
 *   ./test_foo            run every case
 *   ./test_foo NAME...    run the named cases
 *   ./test_foo --list     list the cases
 *   TEST_NOFORK=1         run in one process (for debuggers)
 *   TEST_TIMEOUT=SECONDS  per-case limit (default 60)
 *
 * Output is TAP (a "1..N" plan, an "ok"/"not ok" line per case, "# SKIP why" on a case
 * that cannot run here) with a closing "N passed, N failed, N skipped". A program whose
 * cases were all skipped exits 77, which CTest reports as skipped (SKIP_RETURN_CODE).
 */
#ifndef DMAHAL_TEST_H
#define DMAHAL_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
/* Ends the running case as skipped: what it needs is not here (a feature left out of the
 * build, a tool not installed). @why is printed after "# SKIP". */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define TEST_SKIP_CODE 77
#define TEST_SKIP(...) test_skip(__VA_ARGS__)

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_register_##name(void)                            \
    {                                                                                              \
        test_register(#name, test_##name);                                                         \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                              \
    } while (0)

/* Integer comparisons print both sides; the operands are evaluated once. */
#define CHECK_CMP_(a, op, b, ta, fmt)                                                              \
    do {                                                                                           \
        ta va_ = (ta)(a), vb_ = (ta)(b);                                                           \
        if (!(va_ op vb_))                                                                         \
            test_fail(__FILE__, __LINE__, "%s %s %s: got %" fmt " vs %" fmt, #a, #op, #b, va_,     \
                      vb_);                                                                        \
    } while (0)

#define CHECK_EQ(a, b)   CHECK_CMP_(a, ==, b, int64_t, PRId64)
#define CHECK_NE(a, b)   CHECK_CMP_(a, !=, b, int64_t, PRId64)
#define CHECK_LT(a, b)   CHECK_CMP_(a, <, b, int64_t, PRId64)
#define CHECK_LE(a, b)   CHECK_CMP_(a, <=, b, int64_t, PRId64)
#define CHECK_GT(a, b)   CHECK_CMP_(a, >, b, int64_t, PRId64)
#define CHECK_GE(a, b)   CHECK_CMP_(a, >=, b, int64_t, PRId64)
#define CHECK_EQ_U(a, b) CHECK_CMP_(a, ==, b, uint64_t, "#" PRIx64)
#define CHECK_NE_U(a, b) CHECK_CMP_(a, !=, b, uint64_t, "#" PRIx64)
#define CHECK_LT_U(a, b) CHECK_CMP_(a, <, b, uint64_t, "#" PRIx64)
#define CHECK_LE_U(a, b) CHECK_CMP_(a, <=, b, uint64_t, "#" PRIx64)
#define CHECK_GE_U(a, b) CHECK_CMP_(a, >=, b, uint64_t, "#" PRIx64)

/* A dmahal call that must succeed: prints the error's name when it does not. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            test_fail(__FILE__, __LINE__, "%s: got %d (%s), expected 0", #expr, rc_,               \
                      dmahal_strerror(rc_));                                                       \
    } while (0)

/* A dmahal call that must fail with a given negative errno. */
#define CHECK_ERR(expr, err)                                                                       \
    do {                                                                                           \
        int rc_ = (expr), want_ = (err);                                                           \
        if (rc_ != want_)                                                                          \
            test_fail(__FILE__, __LINE__, "%s: got %d (%s), expected %d (%s)", #expr, rc_,         \
                      dmahal_strerror(rc_), want_, dmahal_strerror(want_));                        \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                                                 \
            test_fail(__FILE__, __LINE__, "%s == %s: got \"%s\" vs \"%s\"", #a, #b,                \
                      sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                                 \
    } while (0)

/* Substring check, for messages and dumps. */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            test_fail(__FILE__, __LINE__, "%s does not contain \"%s\": got \"%s\"", #hay, n_,      \
                      h_ ? h_ : "(null)");                                                         \
    } while (0)

#endif /* DMAHAL_TEST_H */
