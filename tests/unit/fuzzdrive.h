/*
 * Runs a libFuzzer harness (included from tests/fuzz/ under another name) in
 * the normal suite: a static corpus of tricky inputs, then mutations of it
 * from a fixed seed, so every run is the same and any crash is reproducible.
 */
#ifndef GITWAL_FUZZDRIVE_H
#define GITWAL_FUZZDRIVE_H

#include "testutil.h"

typedef int (*fd_target)(const uint8_t *data, size_t size);

typedef struct {
	const uint8_t *data;
	size_t size;
} fd_input;

static inline size_t fd_mutate(uint64_t *seed, uint8_t *buf, size_t len, size_t cap, const fd_input *corpus,
			       size_t ncorpus)
{
	static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '%', '/', '.', '"', '{', '}', '0', '9', '\\'};
	int rounds = 1 + (int)(tu_rand(seed) % 4), r;
	for (r = 0; r < rounds; r++) {
		uint64_t x = tu_rand(seed);
		size_t at = len ? (size_t)(tu_rand(seed) % len) : 0;
		switch (x % 8) {
		case 0: /* flip a bit */
			if (len)
				buf[at] ^= (uint8_t)(1u << (x >> 8) % 8);
			break;
		case 1: /* an interesting byte */
			if (len)
				buf[at] = interesting[(x >> 8) % sizeof(interesting)];
			break;
		case 2: /* insert a byte */
			if (len < cap) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = (uint8_t)(x >> 16);
				len++;
			}
			break;
		case 3: { /* delete a range */
			size_t n = len ? 1 + (size_t)((x >> 8) % 16) : 0;
			if (n > len - at)
				n = len - at;
			memmove(buf + at, buf + at + n, len - at - n);
			len -= n;
			break;
		}
		case 4: /* truncate */
			len = at;
			break;
		case 5: { /* duplicate a chunk */
			size_t n = 1 + (size_t)((x >> 8) % 32);
			if (n > len - at)
				n = len - at;
			if (len + n <= cap) {
				memmove(buf + at + n, buf + at, len - at);
				len += n;
			}
			break;
		}
		case 6: { /* splice in part of another corpus entry */
			const fd_input *o = &corpus[(x >> 8) % ncorpus];
			size_t from = o->size ? (size_t)(tu_rand(seed) % o->size) : 0, n = o->size - from;
			if (at + n > cap)
				n = cap - at;
			memcpy(buf + at, o->data + from, n);
			if (at + n > len)
				len = at + n;
			break;
		}
		default: /* random bytes */
			if (len)
				buf[at] = (uint8_t)(x >> 24);
			break;
		}
	}
	return len;
}

/* Run every corpus entry, then `iterations` mutants; returns how many inputs ran. */
static inline size_t fd_run(fd_target target, const fd_input *corpus, size_t ncorpus, size_t iterations, uint64_t seed)
{
	size_t i, cap = 1 << 16, maxlen = 0;
	uint8_t *buf = malloc(cap), *copy;
	assert_non_null(buf);
	for (i = 0; i < ncorpus; i++) {
		/* A private copy, exactly sized, so ASan sees any over-read. */
		copy = malloc(corpus[i].size ? corpus[i].size : 1);
		memcpy(copy, corpus[i].data, corpus[i].size);
		target(copy, corpus[i].size);
		free(copy);
		if (corpus[i].size > maxlen)
			maxlen = corpus[i].size;
	}
	for (i = 0; i < iterations; i++) {
		const fd_input *base = &corpus[tu_rand(&seed) % ncorpus];
		size_t len = base->size < cap ? base->size : cap;
		memcpy(buf, base->data, len);
		len = fd_mutate(&seed, buf, len, cap, corpus, ncorpus);
		copy = malloc(len ? len : 1);
		memcpy(copy, buf, len);
		target(copy, len);
		free(copy);
	}
	/* Pure noise too. */
	for (i = 0; i < iterations / 10; i++) {
		size_t len = (size_t)(tu_rand(&seed) % (maxlen + 64)), k;
		if (len > cap)
			len = cap;
		copy = malloc(len ? len : 1);
		for (k = 0; k < len; k++)
			copy[k] = (uint8_t)tu_rand(&seed);
		target(copy, len);
		free(copy);
	}
	free(buf);
	return ncorpus + iterations + iterations / 10;
}

#endif
