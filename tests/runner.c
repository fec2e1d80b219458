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

    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
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

/* Runs one case in a child; returns 0 if it passed. */
static int run_forked(const struct test_case *c, unsigned timeout)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
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
    unsigned passed = 0, failed = 0;

    qsort(cases, ncases, sizeof(cases[0]), cmp_case);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < ncases; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; i < ncases; i++) {
        const struct test_case *c = &cases[i];
        double t0;
        int rc;

        if (!wanted(c->name, argc, argv))
            continue;
        t0 = now();
        if (nofork) {
            c->fn();
            rc = 0;
        } else {
            rc = run_forked(c, timeout ? timeout : 60);
        }
        printf("%s %s (%.3f s)\n", rc ? "FAIL" : "ok  ", c->name, now() - t0);
        fflush(stdout);
        rc ? failed++ : passed++;
    }
    if (passed + failed == 0) {
        fprintf(stderr, "no test matched\n");
        return 2;
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
