/*
 * The filters that check and cut streams, and the sink into memory
 * (gitwal/io.h): what a record says of a key's bytes checked as they pass,
 * and the part of a stream that goes on. Both directions use them: restore,
 * the audit and the archiver read through them, and nothing is read a
 * second time to be checked.
 */
#include "gitwal/io.h"
#include "gitwal/error.h"

#include <stdlib.h>
#include <string.h>

static int check_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_check_filter *f = (gw_check_filter *)sink;
	uint64_t at = f->bytes;
	if (!f->lenient && f->size != GW_CHECK_ANY_SIZE && len > f->size - (at < f->size ? at : f->size)) {
		f->result = GW_CHECK_SIZE;
		return gw_error_set(GW_ECORRUPT, "key %s is larger than %s says (%llu bytes)", f->key, f->source,
				    (unsigned long long)f->size);
	}
	f->bytes += len;
	if (at < f->covered)
		gw_sink_write(&f->digest.sink, buf, f->covered - at < len ? (size_t)(f->covered - at) : len);
	return f->next ? gw_sink_write(f->next, buf, len) : 0;
}

int gw_check_filter_init(gw_check_filter *f, gw_hash_kind kind, gw_sink *next, const char *key, const char *source,
			 uint64_t size, const char *want)
{
	memset(f, 0, sizeof(*f));
	f->sink.write = check_write;
	f->next = next;
	f->key = key;
	f->source = source;
	f->size = size;
	f->covered = UINT64_MAX;
	f->want = want;
	f->kind = kind;
	return gw_digest_filter_init(&f->digest, kind, NULL);
}

int gw_check_filter_finish(gw_check_filter *f)
{
	gw_hash_final(f->digest.hash, f->raw);
	gw_hex_encode(f->hex, f->raw, gw_hash_size(f->kind));
	if (f->size != GW_CHECK_ANY_SIZE && f->bytes != f->size) {
		f->result = GW_CHECK_SIZE;
		return gw_error_set(GW_ECORRUPT, "key %s has %llu bytes, %s says %llu", f->key, (unsigned long long)f->bytes,
				    f->source, (unsigned long long)f->size);
	}
	if (f->want && strcmp(f->hex, f->want) != 0) {
		f->result = GW_CHECK_DIGEST;
		return gw_error_set(GW_ECORRUPT, "key %s is corrupt: its %s is %s, %s says %s", f->key,
				    f->kind == GW_HASH_SHA1 ? "SHA-1" : "SHA-256", f->hex, f->source, f->want);
	}
	f->result = GW_CHECK_OK;
	return 0;
}

void gw_check_filter_dispose(gw_check_filter *f)
{
	gw_digest_filter_dispose(&f->digest);
}

static int slice_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_slice_filter *f = (gw_slice_filter *)sink;
	const unsigned char *p = buf;
	uint64_t start = f->pos, end = f->pos + len;
	if (start < GW_SLICE_KEEP)
		memcpy(f->head + start, p, end < GW_SLICE_KEEP ? len : (size_t)(GW_SLICE_KEEP - start));
	if (len >= GW_SLICE_KEEP) {
		memcpy(f->tail, p + len - GW_SLICE_KEEP, GW_SLICE_KEEP);
	} else {
		memmove(f->tail, f->tail + len, GW_SLICE_KEEP - len);
		memcpy(f->tail + GW_SLICE_KEEP - len, p, len);
	}
	f->pos = end;
	if (f->next && end > f->from && start < f->to) {
		uint64_t a = start > f->from ? start : f->from, z = end < f->to ? end : f->to;
		return gw_sink_write(f->next, p + (a - start), (size_t)(z - a));
	}
	return 0;
}

void gw_slice_filter_init(gw_slice_filter *f, gw_sink *next, uint64_t from, uint64_t to)
{
	memset(f, 0, sizeof(*f));
	f->sink.write = slice_write;
	f->next = next;
	f->from = from;
	f->to = to;
}

const unsigned char *gw_slice_filter_tail(const gw_slice_filter *f, size_t n)
{
	return f->tail + GW_SLICE_KEEP - n;
}

static int buffer_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_buffer_sink *b = (gw_buffer_sink *)sink;
	if (len > b->max - b->len)
		return gw_error_set(GW_ECORRUPT, "%s is larger than the %zu bytes allowed", b->what, b->max);
	if (!b->fixed && b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *n;
		while (cap < b->len + len + 1)
			cap *= 2;
		if (!(n = realloc(b->data, cap)))
			return gw_error_set(GW_ERROR, "out of memory");
		b->data = n;
		b->cap = cap;
	}
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return 0;
}

void gw_buffer_sink_init(gw_buffer_sink *b, void *fixed, size_t max, size_t hint, const char *what)
{
	memset(b, 0, sizeof(*b));
	b->sink.write = buffer_write;
	b->max = max;
	b->what = what;
	if (fixed) {
		b->data = fixed;
		b->cap = max;
		b->fixed = 1;
	} else if (hint && hint < max && (b->data = malloc(hint + 1))) {
		b->cap = hint + 1;
	}
}

unsigned char *gw_buffer_sink_take(gw_buffer_sink *b, size_t *len)
{
	unsigned char *data = b->data;
	if (!data && !(data = malloc(1))) {
		gw_error_set(GW_ERROR, "out of memory");
		return NULL;
	}
	data[b->len] = 0;
	*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}

void gw_buffer_sink_dispose(gw_buffer_sink *b)
{
	if (!b->fixed)
		free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
