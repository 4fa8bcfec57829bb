/*
 * Unit tests for the claim gate of src/backup/full.c (gw_backup_opts.before_claim):
 * the archiver's policy full backups give way to a segment spooled meanwhile
 * (DESIGN.md 10.6). A gate that says no leaves nothing in the store and makes
 * no further attempt; a gate that says yes is asked once, with the LSN the
 * backup then claims; without a gate, `gitwal backup` is unchanged.
 */
#include "testutil.h"

#include "gitwal/backup.h"
#include "gitwal/store.h"
#include "util/git_init.h"

static char tmp[128];

static int group_setup(void **state)
{
	(void)state;
	gw_git_init();
	tu_mkdtemp(tmp, sizeof(tmp));
	return tu_sh("cd %s && mkdir root && git init -q --bare root/a.git && git init -q w && cd w && "
		     "for i in 1 2 3; do echo $i > f; git add f; git -c user.name=t -c user.email=t@t commit -q -m c$i; "
		     "done && git push -q ../root/a.git HEAD:refs/heads/main",
		     tmp);
}

static int group_teardown(void **state)
{
	(void)state;
	tu_rmrf(tmp);
	return 0;
}

typedef struct {
	int calls;
	uint64_t lsn;
	int refuse;
} gate;

static int gate_cb(void *payload, uint64_t lsn)
{
	gate *g = payload;
	g->calls++;
	g->lsn = lsn;
	return g->refuse ? gw_error_set(GW_EEXISTS, "repository a.git: gave way at LSN %llu", (unsigned long long)lsn) : 0;
}

static size_t keys(gw_store *store)
{
	gw_store_listing l;
	size_t n;
	assert_int_equal(gw_store_list_all(store, "repos/", &l), 0);
	n = l.count;
	gw_store_listing_dispose(&l);
	return n;
}

static void test_gate(void **state)
{
	char url[256], root[256], path[300];
	gw_store *store;
	gw_backup_opts o;
	gw_backup_result res;
	gate g = {0, 0, 1};
	struct stat st;
	(void)state;
	snprintf(url, sizeof(url), "file://%s/store", tmp);
	snprintf(root, sizeof(root), "%s/root", tmp);
	assert_int_equal(gw_store_open(&store, url), 0);
	memset(&o, 0, sizeof(o));
	o.before_claim = gate_cb;
	o.payload = &g;

	/* No: the backup gives way, once, and nothing of it is visible (no key, no leftover file). */
	assert_int_equal(gw_backup_full_opts(store, NULL, root, "a.git", &o, &res), GW_EEXISTS);
	assert_non_null(strstr(gw_error_message(), "gave way at LSN 1"));
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.lsn, 1);
	assert_int_equal(keys(store), 0);
	snprintf(path, sizeof(path), "%s/store/repos/a.git", tmp);
	assert_true(stat(path, &st) < 0 || tu_sh("test -z \"$(find %s -type f)\"", path) == 0);

	/* Yes: asked once, with the LSN it claims: the claim and the three parts. */
	g.refuse = 0;
	g.calls = 0;
	assert_int_equal(gw_backup_full_opts(store, NULL, root, "a.git", &o, &res), 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.lsn, 1);
	assert_int_equal(res.lsn, 1);
	assert_int_equal(keys(store), 4);

	/* No gate (gitwal backup): the next LSN, as before. */
	assert_int_equal(gw_backup_full(store, NULL, root, "a.git", &res), 0);
	assert_int_equal(res.lsn, 2);
	assert_int_equal(g.calls, 1);
	gw_store_free(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
