/*
 * Expire records (src/expire/record.c): encode, and every refusal of the
 * parser; in the index (src/index/expired.c): recording one forgets what it
 * covers, pending and done, what the policy learns (deletion); and restore's
 * check (src/expire/check.c): a time or LSN gone by policy is one line naming
 * the policy and date, a time after a whole expiry of a deleted repository
 * is "did not exist".
 */
#include "testutil.h"
#include "gitwal/expire.h"
#include "gitwal/layout.h"
#include "gitwal/store.h"
#include "util/bytes.h"

#define T0 1700000000000000LL
#define AT(lsn) (T0 + (int64_t)(lsn) * 1000000)

typedef struct {
	char dir[128];
	char path[200];
	gw_index *ix;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/index.db", f->dir);
	assert_int_equal(gw_index_open(&f->ix, f->path), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	gw_index_free(f->ix);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static gw_expire_record sample(void)
{
	gw_expire_record r = {"g/a.git", 0, AT(100), 3600000000LL, 2, 1, 4, 5, AT(5), 0};
	return r;
}

/* Re-seal a record's trailer after editing its bytes. */
static void reseal(unsigned char *b, size_t len)
{
	gw_hash_buffer(GW_HASH_SHA256, b, len - 32, b + len - 32);
}

static void test_record_roundtrip_and_refusals(void **state)
{
	gw_expire_record r = sample(), got;
	unsigned char *b;
	size_t len;
	char text[200];
	(void)state;
	assert_int_equal(gw_expire_record_encode(&r, &b, &len), 0);
	assert_int_equal(len, GW_EXPIRE_FIXED_SIZE + strlen("g/a.git") + 32);
	assert_memory_equal(b, GW_EXPIRE_MAGIC, 8);
	assert_int_equal(gw_expire_record_parse(&got, b, len, "k"), 0);
	assert_string_equal(got.repository, "g/a.git");
	assert_int_equal(got.last_lsn, 4);
	assert_int_equal(got.kept_lsn, 5);
	assert_true(got.kept_us == AT(5));
	assert_true(gw_expire_record_horizon(&got) == AT(5));
	gw_expire_record_describe(&got, text, sizeof(text));
	assert_non_null(strstr(text, "keep-within=1h keep-full=2"));
	gw_expire_record_dispose(&got);

	/* Too short, wrong magic, truncated, a trailer that does not match. */
	tu_assert_err(gw_expire_record_parse(&got, b, 20, "k1"), GW_ECORRUPT, "k1: not an expire record");
	b[0] ^= 1;
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k2"), GW_ECORRUPT, "not an expire record");
	b[0] ^= 1;
	tu_assert_err(gw_expire_record_parse(&got, b, len - 1, "k3"), GW_ECORRUPT, "bytes for a path");
	b[len - 1] ^= 1;
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k4"), GW_ECORRUPT, "SHA-256");
	b[len - 1] ^= 1;
	/* A newer version. */
	b[9] = 2;
	reseal(b, len);
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k5"), GW_EVERSION, "upgrade gitwal");
	b[9] = 1;
	/* Unknown flags. */
	b[11] = 4;
	reseal(b, len);
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k6"), GW_ECORRUPT, "unknown flags");
	b[11] = 0;
	/* Kept at or below the removed range. */
	gw_put_be64(b + 48, 4);
	reseal(b, len);
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k7"), GW_ECORRUPT, "inconsistent");
	gw_put_be64(b + 48, 5);
	/* A path Git's rules refuse, and a NUL in it. */
	memcpy(b + GW_EXPIRE_FIXED_SIZE, "../a.git", 7);
	reseal(b, len);
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k8"), GW_ECORRUPT, "k8");
	b[GW_EXPIRE_FIXED_SIZE + 1] = 0;
	reseal(b, len);
	tu_assert_err(gw_expire_record_parse(&got, b, len, "k9"), GW_ECORRUPT, "NUL");
	free(b);

	/* The writer refuses what the reader would. */
	r.kept_lsn = 4;
	tu_assert_err(gw_expire_record_encode(&r, &b, &len), GW_EINVALID, "not a valid range");
	r = sample();
	r.repository = "/abs";
	assert_int_equal(gw_expire_record_encode(&r, &b, &len), GW_EINVALID);
	r = sample();
	r.whole = 1;
	r.deleted_us = AT(3);
	assert_int_equal(gw_expire_record_encode(&r, &b, &len), 0);
	assert_int_equal(gw_expire_record_parse(&got, b, len, "w"), 0);
	assert_int_equal(got.whole, 1);
	assert_int_equal(got.kept_lsn, 0);
	assert_true(gw_expire_record_horizon(&got) == AT(3));
	gw_expire_record_dispose(&got);
	free(b);
}

static void test_record_read_checks_its_key(void **state)
{
	fixture *f = *state;
	gw_expire_record r = sample(), got;
	gw_store *store;
	unsigned char *b;
	size_t len;
	char url[300], *key;
	snprintf(url, sizeof(url), "file://%s/store", f->dir);
	assert_int_equal(gw_store_open(&store, url), 0);
	assert_int_equal(gw_expire_record_encode(&r, &b, &len), 0);
	key = gw_layout_key("g/a.git", 4, GW_KEY_EXPIRE);
	assert_int_equal(gw_store_put(store, key, b, len), 0);
	assert_int_equal(gw_expire_record_read(store, key, &got), 0);
	gw_expire_record_dispose(&got);
	free(key);
	/* The same bytes under another LSN, or another repository, lie about their key. */
	key = gw_layout_key("g/a.git", 9, GW_KEY_EXPIRE);
	assert_int_equal(gw_store_put(store, key, b, len), 0);
	tu_assert_err(gw_expire_record_read(store, key, &got), GW_ECORRUPT, "which is not its key");
	free(key);
	key = gw_layout_key("other.git", 4, GW_KEY_EXPIRE);
	assert_int_equal(gw_store_put(store, key, b, len), 0);
	tu_assert_err(gw_expire_record_read(store, key, &got), GW_ECORRUPT, "which is not its key");
	free(key);
	tu_assert_err(gw_expire_record_read(store, "repos/x/00000000000000000001.expire", &got), GW_ENOTFOUND, "not found");
	free(b);
	gw_store_free(store);
}

static void add_full(gw_index *ix, const char *repo, uint64_t lsn)
{
	gw_full_record r;
	char key[128];
	memset(&r, 0, sizeof(r));
	r.repository = (char *)repo;
	r.lsn = lsn;
	r.time_us = AT(lsn);
	snprintf(key, sizeof(key), "repos/%s/%020llu.full.manifest", repo, (unsigned long long)lsn);
	r.manifest_key = key;
	snprintf(r.manifest_sha256, sizeof(r.manifest_sha256), "%064llx", (unsigned long long)lsn);
	assert_int_equal(gw_index_full_add(ix, &r), 0);
}

static void add_seg(gw_index *ix, const char *repo, uint64_t lsn, uint64_t base, gw_update_kind kind)
{
	gw_segment_record r;
	gw_update u;
	char key[128];
	memset(&r, 0, sizeof(r));
	memset(&u, 0, sizeof(u));
	r.repository = (char *)repo;
	r.lsn = lsn;
	r.base_lsn = base;
	r.time_first_us = r.time_last_us = AT(lsn);
	snprintf(key, sizeof(key), "repos/%s/%020llu.seg", repo, (unsigned long long)lsn);
	r.key = key;
	snprintf(r.sha256, sizeof(r.sha256), "%064llx", (unsigned long long)lsn);
	snprintf(r.prev_sha256, sizeof(r.prev_sha256), "%064llx", (unsigned long long)lsn - 1);
	u.kind = kind;
	u.time_us = AT(lsn);
	u.ref = kind == GW_UPDATE_REF ? "refs/heads/main" : NULL;
	if (kind == GW_UPDATE_REF)
		snprintf(u.new_oid, sizeof(u.new_oid), "%040llx", (unsigned long long)lsn);
	r.updates = 1;
	assert_int_equal(gw_index_segment_add(ix, &r, &u, 1), 0);
}

static int count_cb(const char *key, const gw_expire_record *r, int done, void *payload)
{
	int *n = payload;
	(void)key;
	(void)r;
	(void)done;
	(*n)++;
	return 0;
}

static void test_index_forgets_and_checks(void **state)
{
	fixture *f = *state;
	gw_expire_record r = sample();
	gw_expire_input in;
	gw_full_record fr;
	uint64_t covered, lsn;
	int known, n, deleted;
	/* g/a.git: full 1, segments 2-4, full 5, segments 6-7. */
	add_full(f->ix, "g/a.git", 1);
	add_seg(f->ix, "g/a.git", 2, 1, GW_UPDATE_REF);
	add_seg(f->ix, "g/a.git", 3, 1, GW_UPDATE_REF);
	add_seg(f->ix, "g/a.git", 4, 1, GW_UPDATE_REF);
	add_full(f->ix, "g/a.git", 5);
	add_seg(f->ix, "g/a.git", 6, 5, GW_UPDATE_REF);
	add_seg(f->ix, "g/a.git", 7, 5, GW_UPDATE_REF);
	memset(&in, 0, sizeof(in));
	assert_int_equal(gw_index_expire_facts(f->ix, "g/a.git", &in), 0);
	assert_int_equal(in.first_lsn, 1);
	assert_int_equal(in.last_lsn, 7);
	assert_int_equal(in.deleted, 0);
	/* A repository with full backups only: its first and last are theirs. */
	add_full(f->ix, "g/f.git", 3);
	add_full(f->ix, "g/f.git", 8);
	assert_int_equal(gw_index_expire_facts(f->ix, "g/f.git", &in), 0);
	assert_int_equal(in.first_lsn, 3);
	assert_int_equal(in.last_lsn, 8);

	assert_int_equal(gw_index_expire_add(f->ix, "repos/g%2Fa.git/00000000000000000004.expire", &r, 0), 0);
	assert_int_equal(gw_index_expire_known(f->ix, "repos/g%2Fa.git/00000000000000000004.expire", &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(gw_index_expire_covered(f->ix, "g/a.git", &covered), 0);
	assert_int_equal(covered, 4);
	/* The index forgot LSNs 1-4 and kept 5-7. */
	assert_int_equal(gw_index_full_find_first(f->ix, "g/a.git", &fr), 0);
	assert_int_equal(fr.lsn, 5);
	gw_full_record_dispose(&fr);
	assert_int_equal(gw_index_lsn_known(f->ix, "g/a.git", 3, &known), 0);
	assert_int_equal(known, 0);
	assert_int_equal(gw_index_lsn_known(f->ix, "g/a.git", 6, &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(gw_index_expire_facts(f->ix, "g/a.git", &in), 0);
	assert_int_equal(in.first_lsn, 5);
	/* Recording the same key again is a no-op. */
	assert_int_equal(gw_index_expire_add(f->ix, "repos/g%2Fa.git/00000000000000000004.expire", &r, 0), 0);

	/* Pending until done. */
	n = 0;
	assert_int_equal(gw_index_expire_foreach(f->ix, NULL, 1, count_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(gw_index_expire_set_done(f->ix, "repos/g%2Fa.git/00000000000000000004.expire"), 0);
	n = 0;
	assert_int_equal(gw_index_expire_foreach(f->ix, NULL, 1, count_cb, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gw_index_expire_foreach(f->ix, "g/a.git", 0, count_cb, &n), 0);
	assert_int_equal(n, 1);

	/* Restore's check: before the kept full's time is gone, naming the policy and the record. */
	tu_assert_err(gw_expire_check_time(f->ix, "g/a.git", AT(4), &deleted), GW_ENOTFOUND,
		      "was expired by policy keep-within=1h keep-full=2");
	tu_assert_msg_has("record repos/g%2Fa.git/00000000000000000004.expire");
	tu_assert_msg_has("restores it from");
	assert_int_equal(gw_expire_check_time(f->ix, "g/a.git", AT(5), &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(gw_expire_check_time(f->ix, "other.git", AT(1), &deleted), 0);
	tu_assert_err(gw_expire_check_lsn(f->ix, "g/a.git", 1), GW_ENOTFOUND, "LSN 1 was expired by policy");
	assert_int_equal(gw_expire_check_lsn(f->ix, "g/a.git", 5), 0);

	/* A second record later: a time it took is named with it, an older one with the first. */
	r.first_lsn = 5;
	r.last_lsn = 6;
	r.kept_lsn = 7;
	r.kept_us = AT(7);
	r.time_us = AT(200);
	add_full(f->ix, "g/a.git", 7); /* (a full at 7 for the test: the second cut) */
	assert_int_equal(gw_index_expire_add(f->ix, "repos/g%2Fa.git/00000000000000000006.expire", &r, 1), 0);
	tu_assert_err(gw_expire_check_time(f->ix, "g/a.git", AT(6), &deleted), GW_ENOTFOUND, "00000000000000000006.expire");
	tu_assert_err(gw_expire_check_time(f->ix, "g/a.git", AT(2), &deleted), GW_ENOTFOUND, "00000000000000000004.expire");
	assert_int_equal(gw_index_last_lsn(f->ix, "g/a.git", &lsn), 0);
	assert_int_equal(lsn, 7);
}

static void test_deleted_then_whole(void **state)
{
	fixture *f = *state;
	gw_expire_record r = {"d.git", 1, AT(100), 3600000000LL, 0, 1, 3, 0, 0, AT(3)};
	gw_expire_input in;
	int deleted;
	add_full(f->ix, "d.git", 1);
	add_seg(f->ix, "d.git", 2, 1, GW_UPDATE_REF);
	add_seg(f->ix, "d.git", 3, 1, GW_UPDATE_DELETED);
	memset(&in, 0, sizeof(in));
	assert_int_equal(gw_index_expire_facts(f->ix, "d.git", &in), 0);
	assert_int_equal(in.deleted, 1);
	assert_true(in.deleted_us == AT(3));
	assert_int_equal(gw_index_expire_add(f->ix, "repos/d.git/00000000000000000003.expire", &r, 1), 0);
	assert_int_equal(gw_index_expire_facts(f->ix, "d.git", &in), 0);
	assert_int_equal(in.last_lsn, 0);
	/* Before its deletion: expired; after: it did not exist (as before the expire). */
	tu_assert_err(gw_expire_check_time(f->ix, "d.git", AT(2), &deleted), GW_ENOTFOUND, "removed whole");
	assert_int_equal(gw_expire_check_time(f->ix, "d.git", AT(3), &deleted), 0);
	assert_int_equal(deleted, 1);
	assert_int_equal(gw_expire_check_time(f->ix, "d.git", INT64_MAX, &deleted), 0);
	assert_int_equal(deleted, 1);
	/* Created again: from its new full backup on, it exists. */
	add_full(f->ix, "d.git", 4);
	assert_int_equal(gw_expire_check_time(f->ix, "d.git", AT(4), &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(gw_expire_check_time(f->ix, "d.git", AT(3), &deleted), 0);
	assert_int_equal(deleted, 1);
	/* A restart of the index: rebuild clears the records too. */
	assert_int_equal(gw_index_clear(f->ix), 0);
	assert_int_equal(gw_expire_check_time(f->ix, "d.git", AT(2), &deleted), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_roundtrip_and_refusals),
		cmocka_unit_test_setup_teardown(test_record_read_checks_its_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_forgets_and_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_then_whole, setup, teardown),
	};
	return tu_run_tests(tests);
}
