/*
 * Unit tests for restore/plan.c: planning a restore from the index alone
 * (the full backup, the span of segments, the refs at the end, gaps, and
 * every way a plan is refused), on a real file store holding a real full
 * backup of a real repository and real log segments, which the plan's own
 * sync finds in the store; and what fetching does with the segments a plan
 * names (restore/fetch.c): their size and digests checked on the read.
 */
#include "testutil.h"

#include "gitwal/backup.h"
#include "gitwal/layout.h"
#include "gitwal/segment.h"
#include "gitwal/time.h"
#include "restore/restore_internal.h"

#include <fcntl.h>

typedef struct {
	char dir[128];
	char root[200];
	char url[220];
	char index_path[220];
	gw_store *store;
	gw_index *index;
	char c1[41], c2[41];       /* two commits of a.git; main is at c1 when backed up */
	uint64_t full_lsn;
	int64_t t;                 /* the full backup's time */
	char full_sha256[65];      /* its manifest's digest: the first segment links to it */
	gw_sync_report report;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	gw_backup_result res;
	gw_full_record rec;
	assert_non_null(f);
	tu_mkdtemp(f->dir, sizeof(f->dir));
	tu_git_env(f->dir);
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->url, sizeof(f->url), "file://%s/store", f->dir);
	snprintf(f->index_path, sizeof(f->index_path), "%s/index.db", f->dir);
	tu_git_repo(f->root, "a.git", f->c1, f->c2);
	assert_int_equal(gw_store_open(&f->store, f->url), 0);
	assert_int_equal(gw_index_open(&f->index, f->index_path), 0);
	assert_int_equal(gw_backup_full(f->store, f->index, f->root, "a.git", &res), 0);
	f->full_lsn = res.lsn;
	f->t = res.time_us;
	assert_int_equal(gw_index_full_find(f->index, "a.git", f->full_lsn, &rec), 0);
	memcpy(f->full_sha256, rec.manifest_sha256, 65);
	gw_full_record_dispose(&rec);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	gw_sync_report_dispose(&f->report);
	gw_index_free(f->index);
	gw_store_free(f->store);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* A ref update of main (or another ref) to a commit, at time t. */
static gw_update ref_update(const char *ref, const char *old_hex, const char *new_hex, int64_t t)
{
	gw_update u;
	memset(&u, 0, sizeof(u));
	u.kind = GW_UPDATE_REF;
	u.time_us = t;
	u.ref = (char *)ref;
	snprintf(u.old_oid, sizeof(u.old_oid), "%s", old_hex);
	snprintf(u.new_oid, sizeof(u.new_oid), "%s", new_hex);
	return u;
}

/*
 * Store a log segment of rel at lsn (generation base), linking to prev
 * (hex), at time t, with its updates and no objects (no bundle, no index),
 * exactly as the archiver writes one; digest gets its SHA-256.
 */
static void put_segment(fixture *f, const char *rel, uint64_t lsn, uint64_t base, const char *prev, int64_t t,
			gw_update *u, size_t n, int gap, char digest[65])
{
	gw_segment_header h;
	unsigned char *buf, trailer[GW_SEGMENT_TRAILER_SIZE];
	size_t len;
	gw_hash *hash;
	char *key;
	memset(&h, 0, sizeof(h));
	h.repository = (char *)rel;
	h.lsn = lsn;
	h.base_lsn = base;
	snprintf(h.prev_sha256, sizeof(h.prev_sha256), "%s", prev);
	h.time_first_us = h.time_last_us = t;
	h.updates = u;
	h.nupdates = n;
	if (gap) {
		h.gap = 1;
		h.gap_from_us = t - 500;
		h.gap_to_us = t - 100;
	}
	assert_int_equal(gw_segment_header_encode(&h, &buf, &len), 0);
	assert_int_equal(gw_hash_new(&hash, GW_HASH_SHA256), 0);
	gw_hash_update(hash, buf, len);
	gw_segment_trailer_encode(trailer, 0, 0, hash);
	gw_hash_free(hash);
	assert_non_null(buf = realloc(buf, len + sizeof(trailer)));
	memcpy(buf + len, trailer, sizeof(trailer));
	assert_non_null(key = gw_layout_key(rel, lsn, GW_KEY_SEGMENT));
	assert_int_equal(gw_store_put(f->store, key, buf, len + sizeof(trailer)), 0);
	gw_hex_encode(digest, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
	free(key);
	free(buf);
}

/* The plan for a.git at until (INT64_MAX: the newest state; -1: the latest full backup alone), the index synced by it. */
static int plan(fixture *f, const char *rel, int64_t until, gw_restore_plan *p)
{
	gw_restore_opts o;
	memset(&o, 0, sizeof(o));
	o.until_set = until != -1;
	o.until_us = until;
	o.report = &f->report;
	return gw_restore__plan(f->store, f->index, rel, &o, p);
}

static const char *ref_value(const gw_restore_plan *p, const char *name)
{
	static char hex[GW_HEX_MAX];
	const gw_ref *r = gw_refstate_find(&p->state, name);
	if (!r)
		return NULL;
	gw_hex_encode(hex, r->oid, 20);
	return hex;
}

static void test_latest_full_backup(void **state)
{
	fixture *f = *state;
	gw_restore_plan p;
	gw_restore_result res;
	assert_int_equal(plan(f, "a.git", -1, &p), 0);
	assert_int_equal(p.full.lsn, f->full_lsn);
	assert_int_equal(p.span.full_lsn, f->full_lsn);
	assert_int_equal(p.span.last_lsn, f->full_lsn);
	assert_string_equal(p.m.repository, "a.git");
	assert_string_equal(ref_value(&p, "refs/heads/main"), f->c1);
	assert_string_equal(p.state.head.symbolic, "refs/heads/main");
	/* Nothing to load for building: the full backup alone. */
	assert_int_equal(gw_restore__plan_segments(f->index, "a.git", &p), 0);
	assert_int_equal(p.nsegs, 0);
	/* The end state as printed: HEAD first. */
	memset(&res, 0, sizeof(res));
	assert_int_equal(gw_restore__plan_end_refs(&p, &res), 0);
	assert_int_equal(res.nend_refs, 2);
	assert_string_equal(res.end_refs[0].name, "HEAD");
	assert_string_equal(res.end_refs[0].value, "ref: refs/heads/main");
	assert_string_equal(res.end_refs[1].name, "refs/heads/main");
	assert_string_equal(res.end_refs[1].value, f->c1);
	gw_restore_result_dispose(&res);
	gw_restore__plan_dispose(&p);
	/* An unknown repository, named. */
	tu_assert_err(plan(f, "nope.git", -1, &p), GW_ENOTFOUND, "nope.git");
	gw_restore__plan_dispose(&p);
}

/* Segments only the store holds: the plan's sync finds them; the span and the refs follow the time asked for. */
static void test_until_replays_the_span(void **state)
{
	fixture *f = *state;
	gw_restore_plan p;
	gw_update u2 = ref_update("refs/heads/main", f->c1, f->c2, f->t + 1000);
	gw_update u3 = ref_update("refs/heads/topic", "", f->c1, f->t + 2000);
	char d2[65], d3[65];
	unsigned char raw[32];
	put_segment(f, "a.git", f->full_lsn + 1, f->full_lsn, f->full_sha256, f->t + 1000, &u2, 1, 0, d2);
	put_segment(f, "a.git", f->full_lsn + 2, f->full_lsn, d2, f->t + 2000, &u3, 1, 1, d3);

	/* Before the first segment: the full backup's state. */
	assert_int_equal(plan(f, "a.git", f->t + 500, &p), 0);
	assert_int_equal(p.span.last_lsn, f->full_lsn);
	assert_int_equal(p.span.segments, 0);
	assert_true(p.exists);
	assert_string_equal(ref_value(&p, "refs/heads/main"), f->c1);
	gw_restore__plan_dispose(&p);

	/* Between the two: main moved, topic not yet there. */
	assert_int_equal(plan(f, "a.git", f->t + 1500, &p), 0);
	assert_int_equal(p.span.last_lsn, f->full_lsn + 1);
	assert_int_equal(p.span.segments, 1);
	assert_string_equal(ref_value(&p, "refs/heads/main"), f->c2);
	assert_null(ref_value(&p, "refs/heads/topic"));
	assert_int_equal(p.ngaps, 0);
	gw_restore__plan_dispose(&p);

	/* The newest state: both, and the second segment's gap reported. */
	assert_int_equal(plan(f, "a.git", INT64_MAX, &p), 0);
	assert_int_equal(p.span.last_lsn, f->full_lsn + 2);
	assert_string_equal(ref_value(&p, "refs/heads/topic"), f->c1);
	assert_int_equal(p.ngaps, 1);
	assert_int_equal(p.gaps[0].lsn, f->full_lsn + 2);
	assert_int_equal(p.gaps[0].from_us, f->t + 1500);
	assert_int_equal(p.gaps[0].to_us, f->t + 1900);
	/* For building: both records, linked, with the keys and digests the store holds. */
	assert_int_equal(gw_restore__plan_segments(f->index, "a.git", &p), 0);
	assert_int_equal(p.nsegs, 2);
	assert_int_equal(p.segs[0].lsn, f->full_lsn + 1);
	assert_int_equal(p.segs[1].lsn, f->full_lsn + 2);
	assert_non_null(strstr(p.segs[1].key, ".seg"));
	assert_int_equal(gw_hex_decode(raw, d3, 32), 0);
	assert_memory_equal(p.segs[1].sha256, raw, 32);
	/* Fetching them: read once, checked, no objects to append. */
	assert_int_equal(gw_restore__fetch_segment_append(f->store, &p.segs[0], NULL), 0);
	assert_int_equal(gw_restore__fetch_segment_append(f->store, &p.segs[1], NULL), 0);
	gw_restore__plan_dispose(&p);
}

static void test_before_the_first_full_backup(void **state)
{
	fixture *f = *state;
	gw_restore_plan p;
	gw_backup_result res;
	char b1[41], b2[41], d[65];
	/* Nothing of a.git is older than its first full backup: proven not archived then. */
	tu_assert_err(plan(f, "a.git", f->t - 1, &p), GW_ENOTFOUND, "before its first full backup");
	tu_assert_msg_has("it was not archived then");
	assert_true(p.not_archived);
	gw_restore__plan_dispose(&p);
	/* b.git has a record older than its first full backup (that generation's manifest lost): not provable. */
	tu_git_repo(f->root, "b.git", b1, b2);
	put_segment(f, "b.git", 1, 1, "", f->t, NULL, 0, 0, d);
	assert_int_equal(gw_backup_full(f->store, f->index, f->root, "b.git", &res), 0);
	assert_true(res.lsn > 1);
	tu_assert_err(plan(f, "b.git", res.time_us - 1, &p), GW_ECORRUPT, "holds an older key of it");
	assert_false(p.not_archived);
	gw_restore__plan_dispose(&p);
}

static void test_deleted_repository(void **state)
{
	fixture *f = *state;
	gw_restore_plan p;
	gw_restore_opts o;
	gw_restore_result res;
	gw_update del;
	char d[65];
	memset(&del, 0, sizeof(del));
	del.kind = GW_UPDATE_DELETED;
	del.time_us = f->t + 1000;
	put_segment(f, "a.git", f->full_lsn + 1, f->full_lsn, f->full_sha256, f->t + 1000, &del, 1, 0, d);
	assert_int_equal(plan(f, "a.git", INT64_MAX, &p), 0);
	assert_false(p.exists);
	gw_restore__plan_dispose(&p);
	assert_int_equal(plan(f, "a.git", f->t + 999, &p), 0);
	assert_true(p.exists);
	gw_restore__plan_dispose(&p);
	/* The restore refuses it, says so, and counts it skipped. */
	memset(&o, 0, sizeof(o));
	o.until_set = 1;
	o.until_us = INT64_MAX;
	o.dry_run = 1;
	o.index_synced = 1;
	tu_assert_err(gw_restore_run(f->store, f->index, "a.git", &o, &res), GW_ENOTFOUND,
		      "repository a.git was deleted (its last record)");
	assert_true(res.skipped);
	gw_restore_result_dispose(&res);
}

static void test_broken_chains_are_refused(void **state)
{
	fixture *f = *state;
	gw_restore_plan p;
	gw_update u = ref_update("refs/heads/main", f->c1, f->c2, f->t + 1000);
	char d2[65], d3[65], d5[65];
	put_segment(f, "a.git", f->full_lsn + 1, f->full_lsn, f->full_sha256, f->t + 1000, &u, 1, 0, d2);
	/* LSN +2 links to something else than LSN +1. */
	put_segment(f, "a.git", f->full_lsn + 2, f->full_lsn, f->full_sha256, f->t + 2000, NULL, 0, 0, d3);
	tu_assert_err(plan(f, "a.git", INT64_MAX, &p), GW_ECORRUPT, "does not link to the record before it");
	gw_restore__plan_dispose(&p);
	/* Before the break, the state is still there. */
	assert_int_equal(plan(f, "a.git", f->t + 1500, &p), 0);
	assert_string_equal(ref_value(&p, "refs/heads/main"), f->c2);
	gw_restore__plan_dispose(&p);
	/* b.git: LSN +2 missing, +3 there: the state after +1 cannot be proven. */
	{
		char b1[41], b2[41];
		gw_backup_result res;
		gw_full_record rec;
		tu_git_repo(f->root, "b.git", b1, b2);
		assert_int_equal(gw_backup_full(f->store, f->index, f->root, "b.git", &res), 0);
		assert_int_equal(gw_index_full_find(f->index, "b.git", res.lsn, &rec), 0);
		put_segment(f, "b.git", res.lsn + 1, res.lsn, rec.manifest_sha256, res.time_us + 1000, NULL, 0, 0, d2);
		put_segment(f, "b.git", res.lsn + 3, res.lsn, d2, res.time_us + 3000, NULL, 0, 0, d5);
		tu_assert_err(plan(f, "b.git", INT64_MAX, &p), GW_ECORRUPT, "is missing from the archive");
		gw_restore__plan_dispose(&p);
		gw_full_record_dispose(&rec);
	}
}

/* A segment damaged in the store after it was indexed: fetching it says which check failed. */
static void test_fetching_a_damaged_segment(void **state)
{
	fixture *f = *state;
	gw_restore_plan p;
	gw_update u = ref_update("refs/heads/main", f->c1, f->c2, f->t + 1000);
	char d[65], path[400], scratch[300], *key;
	unsigned char *data;
	size_t len;
	snprintf(scratch, sizeof(scratch), "%s/scratch", f->dir);
	assert_int_equal(tu_sh("mkdir -p %s/objects/pack", scratch), 0);
	put_segment(f, "a.git", f->full_lsn + 1, f->full_lsn, f->full_sha256, f->t + 1000, &u, 1, 0, d);
	assert_int_equal(plan(f, "a.git", INT64_MAX, &p), 0);
	assert_int_equal(gw_restore__plan_segments(f->index, "a.git", &p), 0);
	assert_int_equal(p.nsegs, 1);
	/* A byte changed in its header. */
	assert_non_null(key = gw_layout_key("a.git", f->full_lsn + 1, GW_KEY_SEGMENT));
	snprintf(path, sizeof(path), "%s/store/%s", f->dir, key);
	data = tu_read_file(path, &len);
	data[30] ^= 1;
	assert_int_equal(chmod(path, 0644), 0);
	tu_write_file(path, data, len);
	tu_assert_err(gw_restore__fetch_segment_append(f->store, &p.segs[0], NULL), GW_ECORRUPT,
		      "its SHA-256 does not match its content");
	tu_assert_err(gw_restore__fetch_segment_pack(f->store, &p.segs[0], scratch, 0, 20), GW_ECORRUPT,
		      "its SHA-256 does not match its content");
	/* Its trailer's digest recomputed (a forger): the index's still differs. */
	{
		unsigned char digest[32];
		assert_int_equal(gw_hash_buffer(GW_HASH_SHA256, data, len - 32, digest), 0);
		memcpy(data + len - 32, digest, 32);
		tu_write_file(path, data, len);
	}
	tu_assert_err(gw_restore__fetch_segment_append(f->store, &p.segs[0], NULL), GW_ECORRUPT,
		      "differs from the one indexed");
	/* Shorter than the index says. */
	tu_write_file(path, data, len - 1);
	tu_assert_err(gw_restore__fetch_segment_append(f->store, &p.segs[0], NULL), GW_ECORRUPT, "the index says");
	/* Longer: refused as the first byte too many passes. */
	data = realloc(data, len + 10);
	memset(data + len, 0, 10);
	tu_write_file(path, data, len + 10);
	tu_assert_err(gw_restore__fetch_segment_pack(f->store, &p.segs[0], scratch, 0, 20), GW_ECORRUPT,
		      "is larger than the index says");
	/* Nothing is left behind by a failed fetch. */
	assert_int_equal(tu_sh("test -z \"$(ls -A %s/objects/pack)\"", scratch), 0);
	free(data);
	free(key);
	gw_restore__plan_dispose(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_latest_full_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_until_replays_the_span, setup, teardown),
		cmocka_unit_test_setup_teardown(test_before_the_first_full_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_chains_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetching_a_damaged_segment, setup, teardown),
	};
	return tu_run_tests(tests);
}
