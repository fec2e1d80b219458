/* SPDX-License-Identifier: MIT */
/*
 * symbolize.c - names for the return addresses of the verifier's backtraces.
 *
 * A frame reads "function+0xoff (file:line) in object". The names come from the program's
 * own debug information through elfutils' libdw (libdwfl), when the library was built
 * with its header (Debian: libdw-dev) and libdw.so.1 is there at run time: it reads each
 * object's symbol table and DWARF line table, so static functions are named too, and the
 * line is the call's. libdw is opened with dlopen, on first use: linking the library (or a
 * program linked with libdmahal.a) needs nothing more, and without it, frames fall back to
 * dladdr(), which knows only the dynamic symbol table ("function+0xoff in object" for an
 * exported function, "object+0xoff" otherwise: addr2line -f -e object 0xoff names it).
 * A statically linked program never loads libdw (dlopen there would bring a second libc).
 */
#include "verifier/verifier.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifdef DMAHAL_HAVE_LIBDWFL
#include <elfutils/libdwfl.h>

/* The libdw functions used, looked up by name in libdw.so.1. */
static struct {
    Dwfl *(*begin)(const Dwfl_Callbacks *);
    void (*report_begin)(Dwfl *);
    int (*linux_proc_report)(Dwfl *, pid_t);
    int (*report_end)(Dwfl *, int (*)(Dwfl_Module *, void *, const char *, Dwarf_Addr, void *),
                      void *);
    Dwfl_Module *(*addrmodule)(Dwfl *, Dwarf_Addr);
    const char *(*module_addrinfo)(Dwfl_Module *, GElf_Addr, GElf_Off *, GElf_Sym *, GElf_Word *,
                                   Elf **, Dwarf_Addr *);
    Dwfl_Line *(*module_getsrc)(Dwfl_Module *, Dwarf_Addr);
    const char *(*lineinfo)(Dwfl_Line *, Dwarf_Addr *, int *, int *, Dwarf_Word *, Dwarf_Word *);
    const char *(*module_info)(Dwfl_Module *, void ***, Dwarf_Addr *, Dwarf_Addr *, Dwarf_Addr *,
                               Dwarf_Addr *, const char **, const char **);
} dw;

static Dwfl_Callbacks callbacks;
static char *debuginfo_path;
static Dwfl *session;
#endif

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state; /* 0: not tried, 1: libdw, -1: dladdr only */

#ifdef DMAHAL_HAVE_LIBDWFL
static bool dw_load(void)
{
    void *h;

    if (getauxval(AT_BASE) == 0) /* statically linked: no dynamic loader to dlopen with */
        return false;
    h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return false;
#define DW_SYM(field, name)                                                                        \
    if (!(*(void **)&dw.field = dlsym(h, name)))                                                   \
        return false;
    DW_SYM(begin, "dwfl_begin")
    DW_SYM(report_begin, "dwfl_report_begin")
    DW_SYM(linux_proc_report, "dwfl_linux_proc_report")
    DW_SYM(report_end, "dwfl_report_end")
    DW_SYM(addrmodule, "dwfl_addrmodule")
    DW_SYM(module_addrinfo, "dwfl_module_addrinfo")
    DW_SYM(module_getsrc, "dwfl_module_getsrc")
    DW_SYM(lineinfo, "dwfl_lineinfo")
    DW_SYM(module_info, "dwfl_module_info")
#undef DW_SYM
    if (!(*(void **)&callbacks.find_elf = dlsym(h, "dwfl_linux_proc_find_elf")) ||
        !(*(void **)&callbacks.find_debuginfo = dlsym(h, "dwfl_standard_find_debuginfo")))
        return false;
    callbacks.debuginfo_path = &debuginfo_path;
    session = dw.begin(&callbacks);
    return session != NULL;
}

/* Reads the process's objects anew (after a dlopen, the first time). */
static void dw_report(void)
{
    dw.report_begin(session);
    dw.linux_proc_report(session, getpid());
    dw.report_end(session, NULL, NULL);
}

static bool dw_name(uintptr_t pc, char *buf, size_t size)
{
    Dwarf_Addr at = pc - 1; /* inside the call, not after it */
    Dwfl_Module *mod = dw.addrmodule(session, at);
    const char *fn, *file = NULL, *obj = NULL;
    GElf_Off off = 0;
    GElf_Sym sym;
    Dwfl_Line *line;
    int lineno = 0;

    if (!mod) {
        dw_report();
        mod = dw.addrmodule(session, at);
        if (!mod)
            return false;
    }
    fn = dw.module_addrinfo(mod, at, &off, &sym, NULL, NULL, NULL);
    line = dw.module_getsrc(mod, at);
    if (line)
        file = dw.lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    dw.module_info(mod, NULL, NULL, NULL, NULL, NULL, &obj, NULL);
    if (!fn)
        return false;
    /* The file and line say where; the object's name is enough beside them. */
    if (obj && strrchr(obj, '/'))
        obj = strrchr(obj, '/') + 1;
    if (file)
        snprintf(buf, size, "%s+%#llx (%s:%d) in %s", fn, (unsigned long long)off + 1, file, lineno,
                 obj ? obj : "?");
    else
        snprintf(buf, size, "%s+%#llx in %s", fn, (unsigned long long)off + 1, obj ? obj : "?");
    return true;
}
#endif

static void dladdr_name(uintptr_t pc, char *buf, size_t size)
{
    Dl_info info;

    if (!dladdr((void *)pc, &info) || !info.dli_fname) {
        snprintf(buf, size, "?");
        return;
    }
    if (info.dli_sname && info.dli_saddr)
        snprintf(buf, size, "%s+%#llx in %s", info.dli_sname,
                 (unsigned long long)(pc - (uintptr_t)info.dli_saddr), info.dli_fname);
    else
        snprintf(buf, size, "%s+%#llx", info.dli_fname,
                 (unsigned long long)(pc - (uintptr_t)info.dli_fbase));
}

void dmahal__verify_symbolize(const void *pc, char *buf, size_t size)
{
    pthread_mutex_lock(&lock);
    if (state == 0) {
        state = -1;
#ifdef DMAHAL_HAVE_LIBDWFL
        if (dw_load()) {
            dw_report();
            state = 1;
        }
#endif
    }
#ifdef DMAHAL_HAVE_LIBDWFL
    if (state == 1 && dw_name((uintptr_t)pc, buf, size)) {
        pthread_mutex_unlock(&lock);
        return;
    }
#endif
    pthread_mutex_unlock(&lock);
    dladdr_name((uintptr_t)pc, buf, size);
}

const char *dmahal__verify_symbolizer(void)
{
    char buf[8];

    dmahal__verify_symbolize((const void *)&dmahal__verify_symbolizer, buf, sizeof(buf));
    return state == 1 ? "libdw" : "dladdr";
}
