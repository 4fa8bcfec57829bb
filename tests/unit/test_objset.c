/*
 * Unit tests for wal/objset.c: the set of objects archived in a
 * repository's generation, reset from a real full backup's pack index in a
 * real file store, grown by segments, kept on disk across a restart, and
 * opened empty when its state is missing or damaged.
 */
#include "testutil.h"

#include "gitwal/backup.h"
#include "gitwal/layout.h"
#include "wal/objset.h"

typedef struct {
	char dir[128];
	char root[200];
	char state[200];
	char url[220];
	gw_store *store;
	char *idx_key; /* the full backup's pack index */
	uint64_t lsn;  /* its LSN */
	unsigned char c1[20], tree[20], absent[20];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	gw_backup_result res;
	char c1[41], c2[41];
	assert_non_null(f);
	tu_mkdtemp(f->dir, sizeof(f->dir));
	tu_git_env(f->dir);
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->state, sizeof(f->state), "%s/state/a.git", f->dir);
	snprintf(f->url, sizeof(f->url), "file://%s/store", f->dir);
	tu_git_repo(f->root, "a.git", c1, c2);
	assert_int_equal(gw_store_open(&f->store, f->url), 0);
	assert_int_equal(gw_backup_full(f->store, NULL, f->root, "a.git", &res), 0);
	f->lsn = res.lsn;
	assert_non_null(f->idx_key = gw_layout_key("a.git", f->lsn, GW_KEY_FULL_IDX));
	assert_int_equal(gw_hex_decode(f->c1, c1, 20), 0);
	assert_int_equal(gw_hex_decode(f->tree, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", 20), 0); /* the empty tree */
	memset(f->absent, 0x11, 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	gw_store_free(f->store);
	free(f->idx_key);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void test_a_new_state_is_empty(void **state)
{
	fixture *f = *state;
	gw_objset *set;
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_base_lsn(set), 0);
	assert_int_equal(gw_objset_covered(set), 0);
	assert_int_equal(gw_objset_has(set, f->c1), 0);
	gw_objset_free(set);
}

static void test_a_generation(void **state)
{
	fixture *f = *state;
	gw_objset *set;
	unsigned char seg[2][20];
	memset(seg[0], 0x22, 20);
	memset(seg[1], 0x33, 20);
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_reset(set, f->store, f->idx_key, f->lsn), 0);
	assert_int_equal(gw_objset_base_lsn(set), f->lsn);
	assert_int_equal(gw_objset_covered(set), f->lsn);
	/* The full backup's objects: archived, their closure not proven until marked. */
	assert_int_equal(gw_objset_has(set, f->c1), 2);
	assert_int_equal(gw_objset_has(set, f->tree), 2);
	assert_int_equal(gw_objset_has(set, f->absent), 0);
	assert_int_equal(gw_objset_mark_closed(set, f->c1, 1), 0);
	assert_int_equal(gw_objset_has(set, f->c1), 1);
	assert_int_equal(gw_objset_has(set, f->tree), 2);
	/* A segment's objects: archived with their closure; the set covers its LSN. */
	assert_int_equal(gw_objset_add(set, (const unsigned char *)seg, 2, f->lsn + 1), 0);
	assert_int_equal(gw_objset_has(set, seg[1]), 1);
	assert_int_equal(gw_objset_covered(set), f->lsn + 1);
	/* A segment without objects moves what is covered too. */
	assert_int_equal(gw_objset_add(set, NULL, 0, f->lsn + 2), 0);
	assert_int_equal(gw_objset_covered(set), f->lsn + 2);
	/* Released (no descriptor held), it reopens on the next use. */
	gw_objset_release(set);
	assert_int_equal(gw_objset_has(set, f->tree), 2);
	gw_objset_free(set);

	/* After a restart: the generation, its segments' objects and what they cover; closure proven again. */
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_base_lsn(set), f->lsn);
	assert_int_equal(gw_objset_covered(set), f->lsn + 2);
	assert_int_equal(gw_objset_has(set, seg[0]), 1);
	assert_int_equal(gw_objset_has(set, f->c1), 2);

	/* A new generation forgets the segments of the last. */
	assert_int_equal(gw_objset_reset(set, f->store, f->idx_key, f->lsn + 5), 0);
	assert_int_equal(gw_objset_base_lsn(set), f->lsn + 5);
	assert_int_equal(gw_objset_covered(set), f->lsn + 5);
	assert_int_equal(gw_objset_has(set, seg[0]), 0);
	assert_int_equal(gw_objset_has(set, f->c1), 2);
	gw_objset_free(set);
}

static void test_a_reset_that_fails_claims_nothing(void **state)
{
	fixture *f = *state;
	gw_objset *set;
	char *missing = gw_layout_key("a.git", 99, GW_KEY_FULL_IDX);
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_reset(set, f->store, f->idx_key, f->lsn), 0);
	tu_assert_err(gw_objset_reset(set, f->store, missing, 99), GW_ENOTFOUND, missing);
	gw_objset_free(set);
	/* The old generation's state is gone and the new one was never claimed: a new set opens empty. */
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_base_lsn(set), 0);
	assert_int_equal(gw_objset_has(set, f->c1), 0);
	gw_objset_free(set);
	free(missing);
}

static void test_a_damaged_state_opens_empty(void **state)
{
	fixture *f = *state;
	gw_objset *set;
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_reset(set, f->store, f->idx_key, f->lsn), 0);
	gw_objset_free(set);
	assert_int_equal(tu_sh("echo not an index > %s/base.idx", f->state), 0);
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_base_lsn(set), 0);
	assert_int_equal(gw_objset_has(set, f->c1), 0);
	gw_objset_free(set);
}

/* A sha256 repository's generation: 32-byte ids from its full backup's index and its segments, across a restart. */
static void test_a_sha256_generation(void **state)
{
	fixture *f = *state;
	gw_objset *set;
	gw_backup_result res;
	unsigned char tip[32], seg[2][32];
	char *hex, *key;
	assert_int_equal(tu_sh("set -e; cd %s; git init -q --bare --object-format=sha256 s.git; mkdir s.wt; echo hi > "
			       "s.wt/a; GIT_DIR=s.git GIT_WORK_TREE=s.wt git add -A; GIT_DIR=s.git GIT_WORK_TREE=s.wt "
			       "git commit -q -m one",
			       f->root),
			 0);
	hex = tu_sh_out("git --git-dir=%s/s.git rev-parse HEAD | tr -d '\n'", f->root);
	assert_int_equal(gw_hex_decode(tip, hex, 32), 0);
	free(hex);
	assert_int_equal(gw_backup_full(f->store, NULL, f->root, "s.git", &res), 0);
	assert_non_null(key = gw_layout_key("s.git", res.lsn, GW_KEY_FULL_IDX));
	memset(seg[0], 0x22, 32);
	memset(seg[1], 0x33, 32);
	seg[1][31] = 0x01; /* differs from seg[0] only after a SHA-1 id's 20 bytes... */
	memcpy(seg[1], seg[0], 20);
	assert_int_equal(gw_objset_open(&set, f->state, 32), 0);
	assert_int_equal(gw_objset_reset(set, f->store, key, res.lsn), 0);
	assert_int_equal(gw_objset_has(set, tip), 2);
	assert_int_equal(gw_objset_add(set, seg[0], 1, res.lsn + 1), 0);
	assert_int_equal(gw_objset_has(set, seg[0]), 1);
	assert_int_equal(gw_objset_has(set, seg[1]), 0); /* ...and is told apart */
	assert_int_equal(gw_objset_add(set, seg[1], 1, res.lsn + 2), 0);
	gw_objset_free(set);
	/* After a restart: the 32-byte ids and markers read back as written. */
	assert_int_equal(gw_objset_open(&set, f->state, 32), 0);
	assert_int_equal(gw_objset_base_lsn(set), res.lsn);
	assert_int_equal(gw_objset_covered(set), res.lsn + 2);
	assert_int_equal(gw_objset_has(set, seg[0]), 1);
	assert_int_equal(gw_objset_has(set, seg[1]), 1);
	assert_int_equal(gw_objset_has(set, tip), 2);
	gw_objset_free(set);
	/* Opened for 20-byte ids, its index does not read: an empty set, which the archiver resets. */
	assert_int_equal(gw_objset_open(&set, f->state, 20), 0);
	assert_int_equal(gw_objset_base_lsn(set), 0);
	gw_objset_free(set);
	free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_new_state_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_reset_that_fails_claims_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_damaged_state_opens_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_sha256_generation, setup, teardown),
	};
	return tu_run_tests(tests);
}
