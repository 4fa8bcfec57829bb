/*
 * Git's delta format (OFS_DELTA and REF_DELTA pack entries): the base's
 * size and the result's size as little-endian base-128 numbers, then
 * instructions: a byte with the high bit set copies a range of the base
 * (bits 0-3 say which offset bytes follow, bits 4-6 which size bytes; a
 * size of 0 means 0x10000), a byte 1..127 inserts that many literal bytes,
 * 0 is reserved. Untrusted: a first pass checks every instruction and sums
 * what they write, so nothing is allocated before the delta is known to be
 * sound and to produce exactly the size it announces.
 */
#include "odb/odb_internal.h"
#include "gitwal/error.h"

#include <stdlib.h>
#include <string.h>

/* A size field: 1 and *v, or 0 when it runs past the end or beyond 64 bits. */
static int get_size(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	unsigned shift = 0;
	unsigned char c;
	*v = 0;
	do {
		if (*p == end || shift > 63)
			return 0;
		c = *(*p)++;
		if (shift == 63 && (c & 0x7e))
			return 0;
		*v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	return 1;
}

const char *gw_delta_result_size(const unsigned char *delta, size_t len, uint64_t *size)
{
	const unsigned char *p = delta, *end = delta + len;
	uint64_t base;
	if (!get_size(&p, end, &base) || !get_size(&p, end, size))
		return "truncated delta header";
	return NULL;
}

/* One copy instruction at *p (its command byte c already read): the base range, or why not. */
static const char *get_copy(const unsigned char **p, const unsigned char *end, unsigned char c, uint64_t *off,
			    uint64_t *size)
{
	int i;
	*off = 0;
	*size = 0;
	for (i = 0; i < 4; i++)
		if (c & (1u << i)) {
			if (*p == end)
				return "truncated copy instruction";
			*off |= (uint64_t)*(*p)++ << (8 * i);
		}
	for (i = 0; i < 3; i++)
		if (c & (0x10u << i)) {
			if (*p == end)
				return "truncated copy instruction";
			*size |= (uint64_t)*(*p)++ << (8 * i);
		}
	if (*size == 0)
		*size = 0x10000;
	return NULL;
}

static int bad(const char **why, const char *what)
{
	*why = what;
	return GW_ECORRUPT;
}

int gw_delta_apply(const unsigned char *base, size_t base_len, const unsigned char *delta, size_t delta_len,
		   uint64_t max, unsigned char **out, size_t *out_len, const char **why)
{
	const unsigned char *p = delta, *end = delta + delta_len, *ops;
	uint64_t want_base, result, total = 0, off, size;
	unsigned char *buf, *w;
	*out = NULL;
	*why = NULL;
	*out_len = 0;
	if (!get_size(&p, end, &want_base) || !get_size(&p, end, &result))
		return bad(why, "truncated delta header");
	if (want_base != base_len)
		return bad(why, "delta is for a base of another size");
	if ((max && result > max) || result >= SIZE_MAX)
		return bad(why, "delta result is larger than allowed");
	ops = p;
	/* First pass: every instruction within its bounds, and the sizes add up. */
	while (p < end) {
		unsigned char c = *p++;
		if (c & 0x80) {
			if ((*why = get_copy(&p, end, c, &off, &size)))
				return GW_ECORRUPT;
			if (off > base_len || size > base_len - off)
				return bad(why, "copy instruction reads past the end of the base");
		} else if (c) {
			size = c;
			if (size > (uint64_t)(end - p))
				return bad(why, "insert instruction runs past the end of the delta");
			p += size;
		} else {
			return bad(why, "reserved instruction 0");
		}
		if (size > result - total)
			return bad(why, "delta writes more than its announced size");
		total += size;
	}
	if (total != result)
		return bad(why, "delta writes less than its announced size");
	if (!(buf = malloc((size_t)result + 1)))
		return gw_error_set(GW_ERROR, "out of memory");
	/* Second pass: checked above, bounds kept anyway. */
	for (p = ops, w = buf; p < end;) {
		unsigned char c = *p++;
		if (c & 0x80) {
			(void)get_copy(&p, end, c, &off, &size);
			memcpy(w, base + off, (size_t)size);
		} else {
			size = c;
			memcpy(w, p, (size_t)size);
			p += size;
		}
		w += size;
	}
	buf[result] = '\0';
	*out = buf;
	*out_len = (size_t)result;
	return 0;
}
