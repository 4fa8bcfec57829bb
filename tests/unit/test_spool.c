/*
 * Unit tests for wal/spool.c: segments captured into the spool (a file
 * store of its own) and uploaded to a real file store in LSN order, found
 * again after a restart, and what becomes of one whose LSN the store already
 * holds (the same record: done; another: set aside) or that the store cannot
 * take (failed, retried on a backoff, the store unhealthy).
 */
#include "testutil.h"

#include "gitwal/layout.h"
#include "gitwal/segment.h"
#include "wal/spool.h"

#include <sys/stat.h>

typedef struct {
	char dir[128];
	char spool_dir[200];
	char target_url[220];
	char index_path[220];
	gw_spool *spool;
	gw_store *target;
	gw_index *index;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf(f->spool_dir, sizeof(f->spool_dir), "%s/spool", f->dir);
	snprintf(f->target_url, sizeof(f->target_url), "file://%s/store", f->dir);
	snprintf(f->index_path, sizeof(f->index_path), "%s/index.db", f->dir);
	assert_int_equal(gw_spool_open(&f->spool, f->spool_dir, 1u << 20), 0);
	assert_int_equal(gw_store_open(&f->target, f->target_url), 0);
	assert_int_equal(gw_index_open(&f->index, f->index_path), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	gw_spool_free(f->spool);
	gw_index_free(f->index);
	gw_store_free(f->target);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* A record of rel at lsn (a full backup's claim: a real segment, written as the archiver writes one) in store. */
static uint64_t put_record(gw_store *store, const char *rel, uint64_t lsn, int64_t t)
{
	gw_store_stat st;
	char *key = gw_layout_key(rel, lsn, GW_KEY_SEGMENT);
	assert_non_null(key);
	assert_int_equal(gw_segment_claim_full(store, rel, lsn, t), 0);
	assert_int_equal(gw_store_stat_key(store, key, &st), 0);
	free(key);
	return st.size;
}

/* Capture one into the spool, as the archiver does: written there, then added. */
static void capture(fixture *f, const char *rel, uint64_t lsn, int64_t t)
{
	gw_spool_item it;
	memset(&it, 0, sizeof(it));
	it.lsn = lsn;
	it.time_us = it.spooled_us = t;
	it.bytes = put_record(gw_spool_store(f->spool), rel, lsn, t);
	assert_int_equal(gw_spool_add(f->spool, rel, &it), 0);
}

/* A pooled member's capture: as capture(), naming its pool's record pool_lsn. */
static void capture_member(fixture *f, const char *rel, uint64_t lsn, int64_t t, const char *pool, uint64_t pool_lsn)
{
	gw_spool_item it;
	memset(&it, 0, sizeof(it));
	it.lsn = lsn;
	it.time_us = it.spooled_us = t;
	it.bytes = put_record(gw_spool_store(f->spool), rel, lsn, t);
	it.pool = pool;
	it.pool_lsn = pool_lsn;
	assert_int_equal(gw_spool_add(f->spool, rel, &it), 0);
}

static int in_store(fixture *f, const char *rel, uint64_t lsn)
{
	gw_store_stat st;
	char *key = gw_layout_key(rel, lsn, GW_KEY_SEGMENT);
	int rc;
	assert_non_null(key);
	rc = gw_store_stat_key(f->target, key, &st);
	free(key);
	gw_error_clear();
	return rc == 0;
}

static int same_bytes(fixture *f, const char *rel, uint64_t lsn, const char *spooled_copy)
{
	char *key = gw_layout_key(rel, lsn, GW_KEY_SEGMENT), *a = NULL;
	unsigned char *b;
	size_t na, nb;
	int same;
	assert_non_null(key);
	assert_int_equal(gw_store_get(f->target, key, 1u << 20, &a, &na), 0);
	b = tu_read_file(spooled_copy, &nb);
	same = na == nb && memcmp(a, b, na) == 0;
	free(key);
	free(a);
	free(b);
	return same;
}

static void test_upload_in_order_and_remove(void **state)
{
	fixture *f = *state;
	gw_spool_event ev;
	char copy[300];
	capture(f, "a.git", 1, 1000);
	capture(f, "a.git", 2, 2000);
	capture(f, "b.git", 1, 1500);
	assert_int_equal(gw_spool_count(f->spool), 3);
	assert_true(gw_spool_has_repo(f->spool, "a.git"));
	assert_false(gw_spool_has_repo(f->spool, "c.git"));
	assert_false(gw_spool_full(f->spool));
	/* Keep what was spooled, to compare with what the store gets. */
	snprintf(copy, sizeof(copy), "%s/copy", f->dir);
	assert_int_equal(tu_sh("cp %s/repos/a.git/00000000000000000002.seg %s", f->spool_dir, copy), 0);

	assert_int_equal(gw_spool_start(f->spool, f->target, f->index, 0, NULL), 0);
	assert_int_equal(gw_spool_flush(f->spool), 3);
	assert_true(same_bytes(f, "a.git", 2, copy));
	/* Events in the order made, a repository's in LSN order; the spool's file goes with the event. */
	assert_int_equal(gw_spool_next_event(f->spool, &ev), 1);
	assert_int_equal(ev.kind, GW_SPOOL_UPLOADED);
	assert_string_equal(ev.rel, "a.git");
	assert_int_equal(ev.item.lsn, 1);
	gw_spool_event_dispose(&ev);
	while (gw_spool_next_event(f->spool, &ev) == 1) {
		assert_int_equal(ev.kind, GW_SPOOL_UPLOADED);
		gw_spool_event_dispose(&ev);
	}
	assert_int_equal(gw_spool_count(f->spool), 0);
	assert_int_equal(gw_spool_bytes(f->spool), 0);
	assert_int_equal(tu_sh("test ! -e %s/repos/a.git/00000000000000000002.seg", f->spool_dir), 0);
	assert_true(gw_spool_healthy(f->spool));
}

static void test_found_again_after_a_restart(void **state)
{
	fixture *f = *state;
	capture(f, "a.git", 1, 1000);
	capture(f, "a.git", 2, 2000);
	gw_spool_free(f->spool);
	/* And a stray file that is not a segment: not gitwal's, left alone. */
	assert_int_equal(tu_sh("echo x > %s/repos/notes.txt", f->spool_dir), 0);
	assert_int_equal(gw_spool_open(&f->spool, f->spool_dir, 1u << 20), 0);
	assert_int_equal(gw_spool_count(f->spool), 2);
	assert_true(gw_spool_has_repo(f->spool, "a.git"));
	assert_int_equal(gw_spool_start(f->spool, f->target, f->index, 0, NULL), 0);
	assert_int_equal(gw_spool_flush(f->spool), 2);
}

/* Uploaded before a crash (or an answer lost): the store holds this very record, which counts as uploaded. */
static void test_the_same_record_in_the_store(void **state)
{
	fixture *f = *state;
	gw_spool_event ev;
	capture(f, "a.git", 1, 1000);
	put_record(f->target, "a.git", 1, 1000);
	assert_int_equal(gw_spool_start(f->spool, f->target, f->index, 0, NULL), 0);
	assert_int_equal(gw_spool_flush(f->spool), 1);
	assert_int_equal(gw_spool_next_event(f->spool, &ev), 1);
	assert_int_equal(ev.kind, GW_SPOOL_UPLOADED);
	gw_spool_event_dispose(&ev);
}

/* Another record at the LSN: the repository stops, and its segments are set aside whole. */
static void test_another_record_in_the_store(void **state)
{
	fixture *f = *state;
	gw_spool_event ev;
	uint64_t bytes;
	size_t count;
	int64_t last;
	capture(f, "a.git", 1, 1000);
	capture(f, "a.git", 2, 2000);
	capture(f, "b.git", 1, 1000);
	put_record(f->target, "a.git", 1, 999); /* a full backup taken elsewhere meanwhile */
	assert_int_equal(gw_spool_start(f->spool, f->target, f->index, 0, NULL), 0);
	assert_int_equal(gw_spool_flush(f->spool), 1); /* b.git's; a.git waits */
	while (gw_spool_next_event(f->spool, &ev) == 1) {
		if (!strcmp(ev.rel, "a.git")) {
			assert_int_equal(ev.kind, GW_SPOOL_CONFLICT);
			assert_true(ev.taken_by_full);
			assert_false(ev.taken_unreadable);
		} else {
			assert_int_equal(ev.kind, GW_SPOOL_UPLOADED);
		}
		gw_spool_event_dispose(&ev);
	}
	assert_true(gw_spool_has_repo(f->spool, "a.git"));
	assert_int_equal(gw_spool_flush(f->spool), 0); /* still waiting */
	assert_int_equal(gw_spool_set_aside(f->spool, "a.git", &bytes, &count, &last), 0);
	assert_int_equal(count, 2);
	assert_true(bytes > 0);
	assert_int_equal(last, 2000);
	assert_false(gw_spool_has_repo(f->spool, "a.git"));
	assert_int_equal(gw_spool_count(f->spool), 0);
	/* Kept for an operator beside the spool, never deleted. */
	assert_int_equal(tu_sh("ls %s/spool-conflicts/a.git.*/00000000000000000002.seg >/dev/null", f->dir), 0);
}

/*
 * A pooled member's segment goes up only once its pool's spooled records up
 * to the LSN it names are in the store (DESIGN.md 19): here the pool's
 * record waits (its LSN was taken elsewhere), so the member's waits with it;
 * one naming a lower pool LSN goes.
 */
static void test_member_after_its_pool(void **state)
{
	fixture *f = *state;
	gw_spool_event ev;
	uint64_t bytes;
	size_t count;
	int64_t last;
	capture(f, "p.git", 2, 1000);
	capture_member(f, "m.git", 1, 2000, "p.git", 2);
	capture_member(f, "n.git", 1, 2000, "p.git", 1);
	put_record(f->target, "p.git", 2, 999);
	assert_int_equal(gw_spool_start(f->spool, f->target, f->index, 0, NULL), 0);
	assert_int_equal(gw_spool_flush(f->spool), 1); /* n.git's alone */
	while (gw_spool_next_event(f->spool, &ev) == 1) {
		if (!strcmp(ev.rel, "p.git"))
			assert_int_equal(ev.kind, GW_SPOOL_CONFLICT);
		else
			assert_string_equal(ev.rel, "n.git");
		assert_null(ev.item.pool);
		gw_spool_event_dispose(&ev);
	}
	assert_true(in_store(f, "n.git", 1));
	assert_false(in_store(f, "m.git", 1));
	assert_int_equal(gw_spool_flush(f->spool), 0); /* m.git still waits for p.git's record */
	assert_true(gw_spool_has_repo(f->spool, "m.git"));
	assert_int_equal(gw_spool_set_aside(f->spool, "p.git", &bytes, &count, &last), 0);
	assert_int_equal(gw_spool_flush(f->spool), 1); /* the pool's queue is empty: m.git goes */
	assert_true(in_store(f, "m.git", 1));
	while (gw_spool_next_event(f->spool, &ev) == 1)
		gw_spool_event_dispose(&ev);
}

static void pending_cb(const char *rel, size_t n, uint64_t first, uint64_t last, const char *error, void *payload)
{
	char *out = payload;
	snprintf(out + strlen(out), 512 - strlen(out), "%s %zu %llu-%llu %s;", rel, n, (unsigned long long)first,
		 (unsigned long long)last, error ? error : "-");
}

/* A store that cannot take writes: the upload fails, is retried later, and the store is unhealthy until one goes. */
static void test_a_store_that_fails(void **state)
{
	fixture *f = *state;
	gw_spool_event ev;
	char pending[512] = "";
	int failed = 0, unhealthy = 0;
	capture(f, "a.git", 1, 1000);
	capture(f, "a.git", 2, 2000);
	assert_int_equal(tu_sh("mkdir -p %s/store && chmod 0500 %s/store", f->dir, f->dir), 0);
	if (geteuid() == 0) {
		/* root writes anyway: the store's directory replaced by a file instead */
		assert_int_equal(tu_sh("rmdir %s/store && touch %s/store", f->dir, f->dir), 0);
	}
	assert_int_equal(gw_spool_start(f->spool, f->target, f->index, 0, NULL), 0);
	assert_int_equal(gw_spool_flush(f->spool), 0);
	while (gw_spool_next_event(f->spool, &ev) == 1) {
		if (ev.kind == GW_SPOOL_FAILED) {
			failed++;
			assert_int_equal(ev.item.lsn, 1); /* the head only: LSN order */
			assert_int_equal(ev.code, GW_EIO);
			assert_int_equal(ev.retry_ms, 1000);
			assert_non_null(ev.message);
		} else if (ev.kind == GW_SPOOL_HEALTH && !ev.healthy) {
			unhealthy++;
		}
		gw_spool_event_dispose(&ev);
	}
	assert_int_equal(failed, 1);
	assert_int_equal(unhealthy, 1);
	assert_false(gw_spool_healthy(f->spool));
	assert_int_equal(gw_spool_pending(f->spool, pending_cb, pending), 1);
	assert_non_null(strstr(pending, "a.git 2 1-2 "));
	assert_null(strstr(pending, " -;"));
	/* The store back: the next attempt goes, in order, and the store is healthy again. */
	assert_int_equal(tu_sh("rm -rf %s/store && mkdir %s/store", f->dir, f->dir), 0);
	assert_int_equal(gw_spool_flush(f->spool), 2);
	assert_true(gw_spool_healthy(f->spool));
	while (gw_spool_next_event(f->spool, &ev) == 1)
		gw_spool_event_dispose(&ev);
	assert_int_equal(gw_spool_count(f->spool), 0);
}

static void test_full_at_its_bound(void **state)
{
	fixture *f = *state;
	gw_spool_free(f->spool);
	assert_int_equal(gw_spool_open(&f->spool, f->spool_dir, 10), 0);
	assert_false(gw_spool_full(f->spool));
	capture(f, "a.git", 1, 1000);
	assert_true(gw_spool_full(f->spool));
	assert_true(gw_spool_bytes(f->spool) >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upload_in_order_and_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_found_again_after_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_same_record_in_the_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_another_record_in_the_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_store_that_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_member_after_its_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_at_its_bound, setup, teardown),
	};
	return tu_run_tests(tests);
}
