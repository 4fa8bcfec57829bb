/*
 * Big-endian integers, as Git's pack and index formats and gitwal's own
 * formats store them: one definition for every reader and writer, a byte at
 * a time (no alignment or host byte-order assumptions).
 */
#ifndef GITWAL_BYTES_H
#define GITWAL_BYTES_H

#include <stdint.h>

static inline uint32_t gw_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void gw_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline uint64_t gw_get_be64(const unsigned char *p)
{
	return (uint64_t)gw_get_be32(p) << 32 | gw_get_be32(p + 4);
}

static inline void gw_put_be64(unsigned char *p, uint64_t v)
{
	gw_put_be32(p, (uint32_t)(v >> 32));
	gw_put_be32(p + 4, (uint32_t)v);
}

#endif
