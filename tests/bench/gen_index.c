/*
 * gitwal-bench-index: load an index with synthetic log segments, for
 * scripts/bench-pitr.sh (planning 1,000 repositories x 10,000 segments).
 *
 *   gitwal-bench-index INDEX NSEG
 *
 * For every repository with a full backup in INDEX (taken by a real
 * `gitwal backup`), it appends NSEG segment records after its latest full
 * backup through the library's own gw_index_segment_add, chained to the
 * manifest's digest, 10 us apart, each moving refs/heads/main, every 100th
 * also creating a tag. The segments exist only in the index: the benchmark
 * measures planning (`restore --dry-run`), which reads nothing else but the
 * full backup's manifest. Repositories that already have segments are left
 * alone, so a second run is a no-op.
 *
 *   gitwal-bench-index INDEX NSEG FULL_EVERY
 *
 * makes every FULL_EVERY-th record a full backup instead (a new generation:
 * the segments after it are based on it and chain from its manifest's
 * digest), the history scripts/bench-expire.sh plans retention over. Like
 * the segments, these full backups exist only in the index.
 */
#include "gitwal/error.h"
#include "gitwal/index.h"
#include "gitwal/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fake_digest(char out[65], uint64_t a, uint64_t b)
{
	/* splitmix64: distinct-looking digests, reproducible. */
	uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ b, w[4];
	int i;
	for (i = 0; i < 4; i++) {
		x += 0x9E3779B97F4A7C15ULL;
		w[i] = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
		w[i] = (w[i] ^ (w[i] >> 27)) * 0x94D049BB133111EBULL;
		w[i] ^= w[i] >> 31;
	}
	snprintf(out, 65, "%016llx%016llx%016llx%016llx", (unsigned long long)w[0], (unsigned long long)w[1],
		 (unsigned long long)w[2], (unsigned long long)w[3]);
}

/* The full backup k records after the real one: a copy of it at that LSN and time, with its own keys and digest. */
static int add_full(gw_index *ix, const gw_full_record *real, const char *rel, uint64_t repo_no, uint64_t k,
		    char digest[65])
{
	gw_full_record f = *real;
	int rc;
	f.lsn = real->lsn + k;
	f.time_us = real->time_us + (int64_t)k * 10;
	if (!(f.manifest_key = gw_layout_key(rel, f.lsn, GW_KEY_FULL_MANIFEST)))
		return gw_error_set(GW_ERROR, "out of memory");
	fake_digest(f.manifest_sha256, repo_no ^ 0xf011, f.lsn);
	rc = gw_index_full_add(ix, &f);
	memcpy(digest, f.manifest_sha256, 65);
	free(f.manifest_key);
	return rc;
}

static int load_repo(gw_index *ix, const char *rel, uint64_t repo_no, uint64_t nseg, uint64_t full_every)
{
	gw_full_record full;
	char prev[65], tag[64];
	uint64_t last, k, base;
	int rc;
	if ((rc = gw_index_full_find(ix, rel, 0, &full)) < 0)
		return rc;
	if ((rc = gw_index_last_lsn(ix, rel, &last)) < 0 || last != full.lsn) {
		gw_full_record_dispose(&full);
		return rc;
	}
	memcpy(prev, full.manifest_sha256, sizeof(prev));
	base = full.lsn;
	if ((rc = gw_index_batch_begin(ix)) < 0) {
		gw_full_record_dispose(&full);
		return rc;
	}
	for (k = 1; k <= nseg && rc == 0; k++) {
		gw_segment_record r;
		gw_update u[2];
		size_t n = 1;
		char old_hex[65], new_hex[65];
		if (full_every && k % full_every == 0) {
			rc = add_full(ix, &full, rel, repo_no, k, prev);
			base = full.lsn + k;
			continue;
		}
		memset(&r, 0, sizeof(r));
		memset(u, 0, sizeof(u));
		r.repository = (char *)rel;
		r.lsn = full.lsn + k;
		r.base_lsn = base;
		r.time_first_us = r.time_last_us = full.time_us + (int64_t)k * 10;
		if (!(r.key = gw_layout_key(rel, r.lsn, GW_KEY_SEGMENT))) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			break;
		}
		r.size = 2000 + k % 500;
		fake_digest(r.sha256, repo_no, r.lsn);
		memcpy(r.prev_sha256, prev, sizeof(prev));
		r.objects = 3;
		fake_digest(old_hex, repo_no ^ 0xabc, k - 1);
		fake_digest(new_hex, repo_no ^ 0xabc, k);
		u[0].kind = GW_UPDATE_REF;
		u[0].time_us = r.time_first_us;
		u[0].ref = "refs/heads/main";
		snprintf(u[0].old_oid, sizeof(u[0].old_oid), "%.40s", old_hex);
		snprintf(u[0].new_oid, sizeof(u[0].new_oid), "%.40s", new_hex);
		if (k % 100 == 0) {
			snprintf(tag, sizeof(tag), "refs/tags/v%llu", (unsigned long long)(k / 100));
			u[1] = u[0];
			u[1].ref = tag;
			u[1].old_oid[0] = '\0';
			n = 2;
		}
		r.updates = n;
		rc = gw_index_segment_add(ix, &r, u, n);
		memcpy(prev, r.sha256, sizeof(prev));
		free(r.key);
	}
	if (rc == 0)
		rc = gw_index_batch_commit(ix);
	else
		gw_index_batch_commit(ix);
	gw_full_record_dispose(&full);
	return rc;
}

int main(int argc, char **argv)
{
	gw_index *ix = NULL;
	char **repos = NULL;
	size_t n = 0, i;
	char *end;
	unsigned long long nseg, full_every = 0;
	int rc = 0;
	if ((argc != 3 && argc != 4) || !(nseg = strtoull(argv[2], &end, 10)) || *end ||
	    (argc == 4 && (!(full_every = strtoull(argv[3], &end, 10)) || *end))) {
		fprintf(stderr, "usage: gitwal-bench-index INDEX NSEG [FULL_EVERY]\n");
		return 2;
	}
	if (gw_index_open(&ix, argv[1]) < 0 || gw_index_repos(ix, &repos, &n) < 0) {
		fprintf(stderr, "gitwal-bench-index: %s\n", gw_error_message());
		gw_index_free(ix);
		return 1;
	}
	for (i = 0; i < n && rc == 0; i++) {
		rc = load_repo(ix, repos[i], i + 1, nseg, full_every);
		if ((i + 1) % 100 == 0 || i + 1 == n)
			fprintf(stderr, "gitwal-bench-index: %zu/%zu repositories\n", i + 1, n);
	}
	if (rc < 0)
		fprintf(stderr, "gitwal-bench-index: %s\n", gw_error_message());
	for (i = 0; i < n; i++)
		free(repos[i]);
	free(repos);
	gw_index_free(ix);
	return rc < 0 ? 1 : 0;
}
