/*
 * gitwal-bench-segment: the archiver's segment build (wal/segment_build.c) on
 * a real history, for scripts/bench-segment.sh.
 *
 *   gitwal-bench-segment REPO REF N SCRATCH
 *
 * Takes the first-parent chain of REF in the bare repository REPO, c_N (the
 * oldest of N+1) .. c_0 (REF itself), and builds, into a file store under
 * SCRATCH (which must not exist), the segments an archiver would write if
 * refs/heads/bench moved along it: first one segment creating it at c_N (the
 * walk of the whole history below c_N, packed by git pack-objects), then one
 * per commit c_{N-1} .. c_0 (the walk stops at what is archived; each small
 * pack is written in-process). Times, as one line each:
 *
 *   full     seconds cpu children objects            the first segment
 *   pushes   seconds cpu children objects segments   the N small ones, together
 *
 * (wall-clock seconds, CPU seconds of the build itself and of the git
 * processes it ran).
 *   digest   the first segment's digest, then SHA-256 over the others' own
 *            digests, in order
 *
 * Segment headers carry fixed times, so the digests depend only on the
 * objects found and the bytes written: two builds of gitwal that must write
 * the same segments print the same digests (the first one only when git
 * pack-objects is deterministic: pack.threads=1).
 */
#include "gitwal/error.h"
#include "gitwal/io.h"
#include "gitwal/segment.h"
#include "gitwal/store.h"
#include "wal/objset.h"
#include "wal/segment_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process (who RUSAGE_SELF) or of its reaped children (git pack-objects). */
static double cpu(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static int die(const char *what)
{
	fprintf(stderr, "gitwal-bench-segment: %s: %s\n", what, gw_error_message());
	return 1;
}

int main(int argc, char **argv)
{
	char cmd[8192], line[256], path[4200], prev[65] = "", hex[GW_HEX_MAX], first[65] = "";
	char (*chain)[GW_HEX_MAX] = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t objects = 0;
	unsigned char digest[32];
	double t0, c0, k0, t_full = 0, t_push = 0, c_full = 0, c_push = 0, k_full = 0, k_push = 0;
	gw_store *store = NULL;
	gw_objset *set = NULL;
	gw_hash *all = NULL;
	FILE *p;

	if (argc != 5) {
		fprintf(stderr, "usage: gitwal-bench-segment REPO REF N SCRATCH\n");
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "git --git-dir='%s' rev-list --first-parent -n %ld '%s'", argv[1],
		 atol(argv[3]) + 1, argv[2]);
	if (!(p = popen(cmd, "r")))
		return 1;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (n == cap && !(chain = realloc(chain, (cap = cap ? cap * 2 : 64) * sizeof(*chain))))
			return 1;
		snprintf(chain[n++], GW_HEX_MAX, "%s", line);
	}
	if (pclose(p) != 0 || n < 2) {
		fprintf(stderr, "gitwal-bench-segment: cannot list the history of %s\n", argv[2]);
		return 1;
	}
	if (mkdir(argv[4], 0700) < 0) {
		perror(argv[4]);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/tmp", argv[4]);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "file://%s/store", argv[4]);
	if (gw_store_open(&store, path) < 0)
		return die("store");
	snprintf(path, sizeof(path), "%s/objset", argv[4]);
	if (gw_objset_open(&set, path, 20) < 0)
		return die("object set");
	{
		/* The generation's base: a full backup of nothing (an empty .idx v2), at LSN 1. */
		unsigned char idx[8 + 1024 + 40] = "\377tOc\0\0\0\2";
		gw_hash_buffer(GW_HASH_SHA1, idx, sizeof(idx) - 20, idx + sizeof(idx) - 20);
		if (gw_store_put(store, "bench/base.idx", idx, sizeof(idx)) < 0 ||
		    gw_objset_reset(set, store, "bench/base.idx", 1) < 0)
			return die("object set");
	}
	if (gw_hash_new(&all, GW_HASH_SHA256) < 0)
		return die("hash");
	snprintf(path, sizeof(path), "%s/tmp", argv[4]);
	for (i = n; i-- > 0;) {
		gw_update u;
		gw_segment_spec spec;
		gw_segment_result res;
		memset(&u, 0, sizeof(u));
		u.kind = GW_UPDATE_REF;
		u.time_us = 1000000 * (int64_t)(n - i);
		u.ref = "refs/heads/bench";
		snprintf(u.old_oid, sizeof(u.old_oid), "%s", i + 1 < n ? chain[i + 1] : "");
		snprintf(u.new_oid, sizeof(u.new_oid), "%s", chain[i]);
		memset(&spec, 0, sizeof(spec));
		spec.rel = "bench.git";
		spec.path = argv[1];
		spec.scratch_dir = path;
		spec.lsn = 1 + n - i;
		spec.base_lsn = 1;
		spec.hash_len = 20;
		spec.prev_sha256 = prev;
		spec.updates = &u;
		spec.nupdates = 1;
		spec.time_first_us = spec.time_last_us = u.time_us;
		t0 = now();
		c0 = cpu(RUSAGE_SELF);
		k0 = cpu(RUSAGE_CHILDREN);
		if (gw_segment_build(store, set, &spec, &res) < 0)
			return die(chain[i]);
		if (i + 1 == n) {
			t_full = now() - t0;
			c_full = cpu(RUSAGE_SELF) - c0;
			k_full = cpu(RUSAGE_CHILDREN) - k0;
		} else {
			t_push += now() - t0;
			c_push += cpu(RUSAGE_SELF) - c0;
			k_push += cpu(RUSAGE_CHILDREN) - k0;
		}
		if (gw_objset_add(set, res.oids, res.objects, spec.lsn) < 0)
			return die("object set");
		if (i + 1 == n) {
			printf("full %.3f %.3f %.3f %llu\n", t_full, c_full, k_full, (unsigned long long)res.objects);
		} else {
			objects += res.objects;
		}
		if (i + 1 == n)
			snprintf(first, sizeof(first), "%s", res.sha256);
		else
			gw_hash_update(all, res.sha256, 64);
		snprintf(prev, sizeof(prev), "%s", res.sha256);
		gw_segment_result_dispose(&res);
	}
	printf("pushes %.3f %.3f %.3f %llu %zu\n", t_push, c_push, k_push, (unsigned long long)objects, n - 1);
	gw_hash_final(all, digest);
	gw_hex_encode(hex, digest, 32);
	printf("digest %s %s\n", first, hex);
	gw_hash_free(all);
	gw_objset_free(set);
	gw_store_free(store);
	free(chain);
	return 0;
}
