/* SPDX-License-Identifier: MIT */
/*
 * dma.c - `dmahal dma`: the !dma view of another process, running or dead, through gdb and
 * the `dma` command of tools/gdb/dmahal.py, which reads the process's memory and debug
 * information and calls nothing in it.
 *
 *   dmahal dma --pid PID [ADAPTER [FLAGS]]
 *   dmahal dma --core CORE PROGRAM [ADAPTER [FLAGS]]
 */
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef DMAHAL_GDB_SCRIPT_SOURCE
#define DMAHAL_GDB_SCRIPT_SOURCE ""
#endif

/* The gdb extension: $DMAHAL_GDB_SCRIPT, else where an install puts it beside this program
 * (BINDIR/../share/dmahal/gdb), else the source tree this program was built from. */
static int find_script(char *out, size_t size)
{
    const char *env = getenv("DMAHAL_GDB_SCRIPT");
    char exe[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        snprintf(out, size, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -ENOENT;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;

        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, size, "%s/../share/dmahal/gdb/dmahal.py", exe);
            if (access(out, R_OK) == 0)
                return 0;
        }
    }
    snprintf(out, size, "%s", DMAHAL_GDB_SCRIPT_SOURCE);
    return out[0] && access(out, R_OK) == 0 ? 0 : -ENOENT;
}

static int usage_error(const char *why)
{
    fprintf(stderr,
            "dmahal dma: %s\n"
            "usage: dmahal dma --pid PID [ADAPTER [FLAGS]]\n"
            "       dmahal dma --core CORE PROGRAM [ADAPTER [FLAGS]]\n",
            why);
    return TOOL_EXIT_USAGE;
}

int tool_dma(int argc, char **argv)
{
    char script[PATH_MAX + 64], source[PATH_MAX + 80], dma[256];
    const char *gdb = getenv("DMAHAL_GDB");
    const char *args[32];
    int i = 0, rest, status;
    pid_t child;

    if (argc < 2)
        return usage_error("say which process: --pid PID or --core CORE PROGRAM");
    if (!gdb || !*gdb)
        gdb = "gdb";
    if (find_script(script, sizeof(script))) {
        fprintf(stderr, "dmahal dma: the gdb extension dmahal.py is not where it should be "
                        "(set DMAHAL_GDB_SCRIPT to its path)\n");
        return TOOL_EXIT_FAIL;
    }
    args[i++] = gdb;
    args[i++] = "-nx";
    args[i++] = "-batch";
    args[i++] = "-q";
    if (strcmp(argv[0], "--pid") == 0) {
        char *end;

        if (strtol(argv[1], &end, 10) <= 0 || *end)
            return usage_error("--pid needs a process ID");
        args[i++] = "-p";
        args[i++] = argv[1];
        rest = 2;
    } else if (strcmp(argv[0], "--core") == 0) {
        if (argc < 3)
            return usage_error("--core needs the core file and the program that wrote it");
        args[i++] = argv[2];
        args[i++] = argv[1];
        rest = 3;
    } else {
        return usage_error("say which process: --pid PID or --core CORE PROGRAM");
    }
    if (argc - rest > 2)
        return usage_error("too many arguments");
    snprintf(source, sizeof(source), "source %s", script);
    snprintf(dma, sizeof(dma), "dma %s %s", argc > rest ? argv[rest] : "",
             argc > rest + 1 ? argv[rest + 1] : "");
    args[i++] = "-ex";
    args[i++] = source;
    args[i++] = "-ex";
    args[i++] = dma;
    args[i] = NULL;
    fflush(stdout);
    child = fork();
    if (child < 0) {
        perror("dmahal dma: fork");
        return TOOL_EXIT_FAIL;
    }
    if (child == 0) {
        execvp(gdb, (char *const *)args);
        fprintf(stderr, "dmahal dma: cannot run %s: %s (install gdb, or set DMAHAL_GDB)\n", gdb,
                strerror(errno));
        _exit(127);
    }
    if (waitpid(child, &status, 0) < 0)
        return TOOL_EXIT_FAIL;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
}
