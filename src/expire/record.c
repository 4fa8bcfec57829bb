/*
 * The expire record (DESIGN.md 18.2): written create-only under the
 * repository's prefix, at the highest LSN it removes, before any key is
 * removed. Binary, fixed fields then the repository path, then the SHA-256
 * of every byte before it. The parser trusts nothing: every length is
 * checked against what was read, every field against its range.
 */
#include "gitwal/expire.h"
#include "gitwal/error.h"
#include "gitwal/io.h"
#include "gitwal/layout.h"
#include "gitwal/repo.h"
#include "gitwal/time.h"
#include "util/bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 4095
#define RECORD_MAX (GW_EXPIRE_FIXED_SIZE + PATH_MAX_LEN + 32)

int gw_expire_record_encode(const gw_expire_record *r, unsigned char **out, size_t *len)
{
	size_t plen = r->repository ? strlen(r->repository) : 0, n = GW_EXPIRE_FIXED_SIZE + plen + 32;
	unsigned char *b;
	*out = NULL;
	if (gw_repo_path_check(r->repository) < 0)
		return GW_EINVALID;
	if (plen > PATH_MAX_LEN)
		return gw_error_set(GW_EINVALID, "repository path %s is too long for an expire record", r->repository);
	if (!r->last_lsn || r->first_lsn > r->last_lsn || (!r->whole && r->kept_lsn <= r->last_lsn))
		return gw_error_set(GW_EINVALID, "expire record of %s: LSNs %llu..%llu, kept %llu are not a valid range",
				    r->repository, (unsigned long long)r->first_lsn, (unsigned long long)r->last_lsn,
				    (unsigned long long)r->kept_lsn);
	if (!(b = calloc(1, n)))
		return gw_error_set(GW_ERROR, "out of memory");
	memcpy(b, GW_EXPIRE_MAGIC, 8);
	b[8] = 0;
	b[9] = GW_EXPIRE_VERSION;
	b[10] = 0;
	b[11] = r->whole ? GW_EXPIRE_FLAG_WHOLE : 0;
	gw_put_be64(b + 12, (uint64_t)r->time_us);
	gw_put_be64(b + 20, (uint64_t)r->keep_within_us);
	gw_put_be32(b + 28, r->keep_full);
	gw_put_be64(b + 32, r->first_lsn);
	gw_put_be64(b + 40, r->last_lsn);
	gw_put_be64(b + 48, r->whole ? 0 : r->kept_lsn);
	gw_put_be64(b + 56, (uint64_t)(r->whole ? 0 : r->kept_us));
	gw_put_be64(b + 64, (uint64_t)(r->whole ? r->deleted_us : 0));
	b[72] = (unsigned char)(plen >> 8);
	b[73] = (unsigned char)plen;
	memcpy(b + GW_EXPIRE_FIXED_SIZE, r->repository, plen);
	gw_hash_buffer(GW_HASH_SHA256, b, n - 32, b + n - 32);
	*out = b;
	*len = n;
	return 0;
}

int gw_expire_record_parse(gw_expire_record *r, const unsigned char *b, size_t len, const char *what)
{
	unsigned char digest[32];
	size_t plen;
	unsigned version, flags;

	memset(r, 0, sizeof(*r));
	if (len < GW_EXPIRE_FIXED_SIZE + 1 + 32 || memcmp(b, GW_EXPIRE_MAGIC, 8) != 0)
		return gw_error_set(GW_ECORRUPT, "expire record %s: not an expire record (%zu bytes)", what, len);
	version = (unsigned)b[8] << 8 | b[9];
	if (version != GW_EXPIRE_VERSION)
		return gw_error_set(GW_EVERSION, "expire record %s has version %u; this gitwal reads version %d (upgrade gitwal)",
				    what, version, GW_EXPIRE_VERSION);
	plen = (size_t)b[72] << 8 | b[73];
	if (plen < 1 || plen > PATH_MAX_LEN || len != GW_EXPIRE_FIXED_SIZE + plen + 32)
		return gw_error_set(GW_ECORRUPT, "expire record %s: %zu bytes for a path of %zu bytes", what, len, plen);
	gw_hash_buffer(GW_HASH_SHA256, b, len - 32, digest);
	if (memcmp(digest, b + len - 32, 32) != 0)
		return gw_error_set(GW_ECORRUPT, "expire record %s does not match its SHA-256 trailer", what);
	flags = (unsigned)b[10] << 8 | b[11];
	if (flags & ~GW_EXPIRE_FLAG_WHOLE)
		return gw_error_set(GW_ECORRUPT, "expire record %s: unknown flags 0x%x", what, flags);
	r->whole = (int)(flags & GW_EXPIRE_FLAG_WHOLE);
	r->time_us = (int64_t)gw_get_be64(b + 12);
	r->keep_within_us = (int64_t)gw_get_be64(b + 20);
	r->keep_full = gw_get_be32(b + 28);
	r->first_lsn = gw_get_be64(b + 32);
	r->last_lsn = gw_get_be64(b + 40);
	r->kept_lsn = gw_get_be64(b + 48);
	r->kept_us = (int64_t)gw_get_be64(b + 56);
	r->deleted_us = (int64_t)gw_get_be64(b + 64);
	if (r->keep_within_us < 0 || !r->first_lsn || r->first_lsn > r->last_lsn ||
	    (r->whole ? (r->kept_lsn || r->kept_us) : (r->kept_lsn <= r->last_lsn || r->deleted_us)))
		return gw_error_set(GW_ECORRUPT, "expire record %s: inconsistent fields (LSNs %llu..%llu, kept LSN %llu)",
				    what, (unsigned long long)r->first_lsn, (unsigned long long)r->last_lsn,
				    (unsigned long long)r->kept_lsn);
	if (memchr(b + GW_EXPIRE_FIXED_SIZE, '\0', plen))
		return gw_error_set(GW_ECORRUPT, "expire record %s: the repository path holds a NUL byte", what);
	if (!(r->repository = malloc(plen + 1)))
		return gw_error_set(GW_ERROR, "out of memory");
	memcpy(r->repository, b + GW_EXPIRE_FIXED_SIZE, plen);
	r->repository[plen] = '\0';
	if (gw_repo_path_check(r->repository) < 0) {
		int rc = gw_error_set(GW_ECORRUPT, "expire record %s: %s", what, gw_error_message());
		gw_expire_record_dispose(r);
		return rc;
	}
	return 0;
}

void gw_expire_record_dispose(gw_expire_record *r)
{
	free(r->repository);
	memset(r, 0, sizeof(*r));
}

int gw_expire_record_read(gw_store *store, const char *key, gw_expire_record *r)
{
	char *buf = NULL, *rel = NULL;
	size_t len = 0;
	uint64_t lsn;
	gw_key_kind kind;
	int rc;
	memset(r, 0, sizeof(*r));
	if ((rc = gw_store_get(store, key, RECORD_MAX, &buf, &len)) < 0)
		return rc;
	rc = gw_expire_record_parse(r, (const unsigned char *)buf, len, key);
	free(buf);
	if (rc < 0)
		return rc;
	gw_layout_parse_key(key, &rel, &lsn, &kind);
	if (!rel || kind != GW_KEY_EXPIRE || strcmp(rel, r->repository) != 0 || lsn != r->last_lsn)
		rc = gw_error_set(GW_ECORRUPT, "expire record %s describes %s up to LSN %llu, which is not its key", key,
				  r->repository, (unsigned long long)r->last_lsn);
	free(rel);
	if (rc < 0)
		gw_expire_record_dispose(r);
	return rc;
}

int64_t gw_expire_record_horizon(const gw_expire_record *r)
{
	return r->whole ? r->deleted_us : r->kept_us;
}

void gw_expire_record_describe(const gw_expire_record *r, char *out, size_t n)
{
	char within[32], when[GW_TIME_TEXT_MAX];
	gw_duration_format(r->keep_within_us, within, sizeof(within));
	gw_time_format(r->time_us, when, sizeof(when));
	snprintf(out, n, "policy keep-within=%s keep-full=%u, expired %s", within, r->keep_full, when);
}
