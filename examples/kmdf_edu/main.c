/* SPDX-License-Identifier: MIT */
/*
 * main.c - runs the KMDF-style edu driver (kmdf_edu.c) on a platform with the verifier on:
 * transactions split into transfers both ways, an unaligned buffer, the single-transfer
 * requirement, and the common buffer, every byte checked, and no report from the verifier.
 *
 *   kmdf_edu [PLATFORM [DEVICE]]    e.g. sim, sim:iommu=on, sim:coherent=no; vfio 0000:00:03.0
 *
 * Without arguments PLATFORM comes from $DMAHAL_PLATFORM (else "sim") and DEVICE from
 * $DMAHAL_VM_EDU (set by the test guest), else "edu".
 * Exits 0 when every check passed.
 */
#include "kmdf_edu.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "kmdf_edu: " __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                                   \
            failed = 1;                                                                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static unsigned reports;

static void on_report(const struct dmahal_report *r, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "kmdf_edu: verifier: %s: %s\n", dmahal_report_kind_name(r->kind), r->message);
    reports++;
}

/* Writes a pattern to the device and reads it back through the two transactions. */
static int round_trip(PEDU_EXTENSION ext, PUCHAR out, PUCHAR back, ULONG len, ULONG off,
                      ULONG want_transfers)
{
    size_t moved;
    ULONG transfers;
    NTSTATUS status;

    for (ULONG i = 0; i < len; i++)
        out[i] = (UCHAR)(i * 3 + off);
    RtlZeroMemory(back, len);
    status = EduTransfer(ext, out, len, off, TRUE, FALSE, &moved, &transfers);
    if (!NT_SUCCESS(status) || moved != len || transfers != want_transfers) {
        fprintf(stderr, "kmdf_edu: write of %u at %u: status %#x, %zu bytes in %u transfers\n", len,
                off, (unsigned)status, moved, transfers);
        return 1;
    }
    status = EduTransfer(ext, back, len, off, FALSE, FALSE, &moved, &transfers);
    if (!NT_SUCCESS(status) || moved != len || transfers != want_transfers) {
        fprintf(stderr, "kmdf_edu: read of %u at %u: status %#x, %zu bytes in %u transfers\n", len,
                off, (unsigned)status, moved, transfers);
        return 1;
    }
    if (!RtlEqualMemory(out, back, len)) {
        fprintf(stderr, "kmdf_edu: read back of %u at %u differs\n", len, off);
        return 1;
    }
    return 0;
}

/* An argument, else an environment variable, else a default. */
static const char *pick(int argc, char **argv, int i, const char *env, const char *dflt)
{
    const char *v;

    if (argc > i)
        return argv[i];
    if ((v = getenv(env)) && *v)
        return v;
    return dflt;
}

int main(int argc, char **argv)
{
    const char *spec = pick(argc, argv, 1, "DMAHAL_PLATFORM", "sim");
    const char *name = pick(argc, argv, 2, "DMAHAL_VM_EDU", "edu");
    struct dmahal_platform *p = NULL;
    struct dmahal_device *hw = NULL;
    PEDU_EXTENSION ext = NULL;
    PUCHAR out = malloc(4096 + 1), back = malloc(4096 + 1);
    size_t moved;
    ULONG transfers;
    NTSTATUS status;
    WDFDEVICE device;
    int failed = 0, rc;

    CHECK(out && back, "no memory");
    rc = dmahal_platform_open(spec, &p);
    CHECK(rc == 0, "cannot open platform %s: %s", spec, dmahal_strerror(rc));
    rc = dmahal_verify_enable(p, 0, on_report, NULL);
    CHECK(rc == 0, "cannot enable the verifier: %s", dmahal_strerror(rc));
    rc = dmahal_device_open(p, name, &hw);
    CHECK(rc == 0, "cannot open %s: %s", name, dmahal_strerror(rc));
    device = dmahal_wdf_device(hw);
    CHECK(device != NULL, "no WDFDEVICE");
    status = EduPrepareHardware(device, hw, &ext);
    CHECK(NT_SUCCESS(status), "EduPrepareHardware: %#x", (unsigned)status);

    /* 3000 bytes with a 1 KiB MaximumLength: three transfers each way. */
    CHECK(round_trip(ext, out, back, 3000, 0, 3) == 0, "3000-byte round trip");
    /* From an odd address, at an offset: 1500 bytes in two transfers. */
    CHECK(round_trip(ext, out + 1, back + 1, 1500, 100, 2) == 0, "unaligned round trip");
    /* One transfer required: 3000 bytes cannot be; 1000 can. */
    status = EduTransfer(ext, out, 3000, 0, TRUE, TRUE, &moved, &transfers);
    CHECK(status == STATUS_WDF_TOO_FRAGMENTED, "single transfer of 3000: %#x", (unsigned)status);
    status = EduTransfer(ext, out, 1000, 0, TRUE, TRUE, &moved, &transfers);
    CHECK(NT_SUCCESS(status) && moved == 1000 && transfers == 1, "single transfer of 1000");
    /* Outside the device's buffer: refused before any DMA. */
    status = EduTransfer(ext, out, 100, EDU_DMA_LIMIT - 50, TRUE, FALSE, &moved, &transfers);
    CHECK(status == STATUS_INVALID_PARAMETER, "transfer past the device buffer: %#x",
          (unsigned)status);
    /* The common buffer, programmed by its logical address. */
    status = EduCommonBufferRoundTrip(ext, 2048, 1024);
    CHECK(NT_SUCCESS(status), "common buffer round trip: %#x", (unsigned)status);

    EduReleaseHardware(ext);
    ext = NULL;
    rc = dmahal_verify_check(p);
    CHECK(rc == 0 && reports == 0, "the verifier reported %u problems", reports);
    printf("kmdf_edu on %s: transactions split and whole, both ways, and the common buffer: "
           "all checked, no verifier report\n",
           spec);
out:
    EduReleaseHardware(ext);
    if (hw)
        dmahal_device_close(hw);
    if (p)
        dmahal_platform_close(p);
    if (!failed && reports) {
        fprintf(stderr, "kmdf_edu: the verifier reported %u problems at close\n", reports);
        failed = 1;
    }
    free(out);
    free(back);
    return failed;
}
