/*
 * CRC32 as Git's pack index records it (zlib's crc32: reflected polynomial
 * 0xEDB88320), fast: restore folds it over every byte of a pack. On x86-64
 * with PCLMULQDQ it runs the carry-less multiplication folding of Gopal et
 * al. ("Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
 * Instruction", Intel, 2009; as in Chromium's zlib), several times zlib's
 * speed; elsewhere, and for the bytes that do not fill 16, zlib's own.
 */
#ifndef GITWAL_UTIL_CRC32_H
#define GITWAL_UTIL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc32_z(crc, buf, len): the CRC of buf continued from crc (0 to start). */
uint32_t gw_crc32(uint32_t crc, const void *buf, size_t len);

#endif
