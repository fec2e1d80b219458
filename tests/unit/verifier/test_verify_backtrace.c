/* SPDX-License-Identifier: MIT */
/* test_verify_backtrace.c - the verifier's backtraces name functions, static ones too, with
 * the file and line of the call (libdw), or at least the object and offset (dladdr). */
#include "verifier/verifier.h"

#include <dmahal/dmahal.h>

#include <stdlib.h>

#include "rig.h"
#include "test.h"

static int alloc_line;

/* Static and not inlined: only the debug information (.symtab, DWARF) knows its name. */
__attribute__((noinline)) static int allocate_in_a_static_function(struct dmahal_adapter *a,
                                                                   struct dmahal_buf *b)
{
    alloc_line = __LINE__ + 1;
    int rc = dmahal_common_alloc(a, 64, 0, b);

    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return rc;
}

TEST(backtraces_name_static_functions_with_file_and_line)
{
    struct rig r;
    struct dmahal_buf b;
    char *text = NULL, want[128];
    size_t size = 0;
    FILE *f;

    CHECK_OK(dmahal_platform_open("sim", &r.p));
    CHECK_OK(dmahal_verify_enable(r.p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_OK(dmahal_device_open(r.p, "edu", &r.d));
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &r.a));
    CHECK_OK(allocate_in_a_static_function(r.a, &b));
    f = open_memstream(&text, &size);
    CHECK(f != NULL);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_COMMON));
    fclose(f);
    if (strcmp(dmahal__verify_symbolizer(), "libdw") == 0) {
        CHECK_CONTAINS(text, "#0 0x");
        CHECK_CONTAINS(text, " allocate_in_a_static_function+0x");
        snprintf(want, sizeof(want), "test_verify_backtrace.c:%d) in test_verify_backtrace",
                 alloc_line);
        CHECK_CONTAINS(text, want);
    } else {
        /* dladdr knows no static function: the object and the offset in it. */
        CHECK_CONTAINS(text, "test_verify_backtrace+0x");
    }
    free(text);
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_close(&r);
}
