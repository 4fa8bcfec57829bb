/*
 * Hashing (OpenSSL EVP) and the digest filter: the one place gitwal computes
 * SHA-1 (Git's object and pack checksums) and SHA-256 (its own).
 */
#include "gitwal/io.h"
#include "gitwal/error.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct gw_hash {
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
	gw_hash_kind kind;
};

size_t gw_hash_size(gw_hash_kind kind)
{
	return kind == GW_HASH_SHA1 ? 20 : 32;
}

static const EVP_MD *md_for(gw_hash_kind kind)
{
	return kind == GW_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
}

int gw_hash_new(gw_hash **out, gw_hash_kind kind)
{
	gw_hash *h = calloc(1, sizeof(*h));
	if (!h || !(h->ctx = EVP_MD_CTX_new())) {
		free(h);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	h->md = md_for(kind);
	h->kind = kind;
	if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return gw_error_set(GW_ERROR, "cannot initialise the hash");
	}
	*out = h;
	return 0;
}

void gw_hash_update(gw_hash *h, const void *buf, size_t len)
{
	if (len)
		EVP_DigestUpdate(h->ctx, buf, len);
}

void gw_hash_final(gw_hash *h, unsigned char *out)
{
	unsigned int n;
	EVP_DigestFinal_ex(h->ctx, out, &n);
	EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void gw_hash_free(gw_hash *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
}

int gw_hash_buffer(gw_hash_kind kind, const void *buf, size_t len, unsigned char *out)
{
	unsigned int n;
	if (EVP_Digest(buf, len, out, &n, md_for(kind), NULL) != 1)
		return gw_error_set(GW_ERROR, "hashing failed");
	return 0;
}

void gw_hex_encode(char *out, const unsigned char *raw, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < len; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int gw_hex_decode(unsigned char *out, const char *hex, size_t len)
{
	size_t i;
	for (i = 0; i < len; i++) {
		int hi = hex_value(hex[2 * i]), lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int gw_hex_is_lower(const char *s, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int digest_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_digest_filter *f = (gw_digest_filter *)sink;
	gw_hash_update(f->hash, buf, len);
	f->bytes += len;
	return f->next ? gw_sink_write(f->next, buf, len) : 0;
}

int gw_digest_filter_init(gw_digest_filter *f, gw_hash_kind kind, gw_sink *next)
{
	memset(f, 0, sizeof(*f));
	f->sink.write = digest_write;
	f->next = next;
	return gw_hash_new(&f->hash, kind);
}

void gw_digest_filter_finish(gw_digest_filter *f, char *hex)
{
	unsigned char raw[GW_HASH_MAX];
	gw_hash_final(f->hash, raw);
	gw_hex_encode(hex, raw, gw_hash_size(f->hash->kind));
}

void gw_digest_filter_dispose(gw_digest_filter *f)
{
	gw_hash_free(f->hash);
	f->hash = NULL;
}
