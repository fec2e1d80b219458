/* SPDX-License-Identifier: MIT */
/*
 * framed.h - included first by every file whose functions run between a driver's call and
 * the verifier: the public entry points (core/entry.c), the verifier (src/verifier/) and the
 * Windows-names layer (src/wdm/). It makes the compiler keep frame pointers in that file,
 * whatever the build type, because the verifier records a backtrace by following them
 * from its frame to the driver's: one frame without a pointer there ends the walk.
 *
 * The rest of the library (allocators, maps, platforms) runs below the verifier, never
 * between it and the driver, and keeps the register for its hot paths.
 */
#ifndef DMAHAL_FRAMED_H
#define DMAHAL_FRAMED_H

#ifdef __GNUC__
#pragma GCC optimize("no-omit-frame-pointer")
#endif

#endif /* DMAHAL_FRAMED_H */
