/* SPDX-License-Identifier: MIT */
/* runner.c - runs the cases of one test program, each in its own process. */
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define MAX_CASES 512

static struct test_case cases[MAX_CASES];
static size_t ncases;

void test_register(const char *name, void (*fn)(void))
{
    if (ncases == MAX_CASES) {
        fprintf(stderr, "test runner: more than %d cases\n", MAX_CASES);
        exit(2);
    }
    cases[ncases++] = (struct test_case){name, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout); /* what the case printed before it failed, first */
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

/* Why the running case skipped, handed from the child through a pipe. */
static int skip_fd = -1;

void test_skip(const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (skip_fd >= 0) {
        ssize_t n = write(skip_fd, why, strlen(why));

        (void)n;
    } else {
        printf("# SKIP %s\n", why);
    }
    fflush(NULL);
    _exit(TEST_SKIP_CODE);
}

static int cmp_case(const void *a, const void *b)
{
    return strcmp(((const struct test_case *)a)->name, ((const struct test_case *)b)->name);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one case in a child; returns 0 if it passed, TEST_SKIP_CODE (with @why) if it
 * skipped. */
static int run_forked(const struct test_case *c, unsigned timeout, char *why, size_t whylen)
{
    pid_t pid;
    int status, fds[2];
    ssize_t n;

    fflush(NULL);
    if (pipe(fds) < 0) {
        perror("pipe");
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        perror("fork");
        close(fds[0]);
        close(fds[1]);
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        skip_fd = fds[1];
        alarm(timeout);
        c->fn();
        fflush(NULL);
#ifdef __SANITIZE_ADDRESS__
        /* _exit skips LeakSanitizer's exit-time check: run it here, per case. */
        if (__lsan_do_recoverable_leak_check())
            _exit(1);
#endif
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], why, whylen - 1);
    why[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WTERMSIG(status) == SIGALRM)
        fprintf(stderr, "  timed out after %u s\n", timeout);
    else
        fprintf(stderr, "  killed by signal %d (%s)\n", WTERMSIG(status),
                strsignal(WTERMSIG(status)));
    return 1;
}

static bool wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *env = getenv("TEST_TIMEOUT");
    unsigned timeout = env ? (unsigned)atoi(env) : 60;
    bool nofork = getenv("TEST_NOFORK") != NULL;
    unsigned passed = 0, failed = 0, skipped = 0, planned = 0, n = 0;

    qsort(cases, ncases, sizeof(cases[0]), cmp_case);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < ncases; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; i < ncases; i++)
        planned += wanted(cases[i].name, argc, argv);
    if (planned == 0) {
        fprintf(stderr, "no test matched\n");
        return 2;
    }
    printf("1..%u\n", planned);
    for (size_t i = 0; i < ncases; i++) {
        const struct test_case *c = &cases[i];
        char why[256] = "";
        double t0;
        int rc;

        if (!wanted(c->name, argc, argv))
            continue;
        t0 = now();
        if (nofork) {
            c->fn();
            rc = 0;
        } else {
            rc = run_forked(c, timeout ? timeout : 60, why, sizeof(why));
        }
        n++;
        if (rc == TEST_SKIP_CODE) {
            printf("ok %u - %s # SKIP %s\n", n, c->name, why);
            skipped++;
        } else {
            printf("%s %u - %s (%.3f s)\n", rc ? "not ok" : "ok", n, c->name, now() - t0);
            rc ? failed++ : passed++;
        }
        fflush(stdout);
    }
    printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
    if (failed)
        return 1;
    return passed == 0 ? TEST_SKIP_CODE : 0;
}
