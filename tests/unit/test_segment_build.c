/*
 * Unit tests for wal/segment_build.c: the diff between the archived ref
 * state and the refs just read. Over random states (packed refs, loose refs
 * over them, symbolic and dangling refs, HEAD either way): comparing only the
 * loose refs (same packed-refs as the state last read) gives exactly the
 * updates of the full comparison, and replaying the updates on the old
 * state (gw_refstate_apply) gives a state with nothing left to update.
 */
#include "testutil.h"

#include "format/refstate.h"
#include "gitwal/store.h"
#include "wal/objset.h"
#include "wal/segment_build.h"

#include <sys/stat.h>
#include <zlib.h>

#define NNAMES 40

static char names[NNAMES][32];
static const char *targets[] = {"refs/heads/r03", "refs/heads/r17", "refs/heads/r39", "refs/heads/nowhere",
				"refs/tags/elsewhere"};

static void make_names(void)
{
	int i;
	for (i = 0; i < NNAMES; i++)
		snprintf(names[i], sizeof(names[i]), "refs/heads/r%02d", i);
}

static void random_oid(unsigned char *oid, uint64_t *seed)
{
	memset(oid, 0, GW_HASH_MAX);
	memset(oid, 0x10 + (int)(tu_rand(seed) % 4), 20); /* few values: many refs keep theirs */
}

static gw_packed_refs *random_packed(uint64_t *seed)
{
	char text[NNAMES * 64], *at = text;
	gw_packed_refs *p;
	int i;
	for (i = 0; i < NNAMES; i++) {
		unsigned char oid[GW_HASH_MAX];
		if (tu_rand(seed) % 3 == 0)
			continue;
		random_oid(oid, seed);
		gw_hex_encode(at, oid, 20);
		at += 40;
		at += sprintf(at, " %s\n", names[i]);
	}
	assert_int_equal(gw_packed_refs_parse(&p, text, (size_t)(at - text), 20, "test"), 0);
	return p;
}

static void random_ref(gw_ref *r, const char *name, uint64_t *seed)
{
	memset(r, 0, sizeof(*r));
	r->name = (char *)name;
	random_oid(r->oid, seed);
	if (tu_rand(seed) % 4 == 0) {
		r->symbolic = (char *)targets[tu_rand(seed) % 5];
		r->dangling = (int)(tu_rand(seed) % 2); /* its value must not matter */
	}
}

/* A view: packed (one more holder) with random loose refs over it and a random HEAD. */
static void random_view(gw_refs_view *v, gw_packed_refs *packed, uint64_t *seed)
{
	int i;
	memset(v, 0, sizeof(*v));
	v->packed = packed;
	if (packed)
		packed->holders++;
	v->loose = calloc(NNAMES, sizeof(gw_ref));
	assert_non_null(v->loose);
	for (i = 0; i < NNAMES; i++)
		if (tu_rand(seed) % 5 == 0)
			random_ref(&v->loose[v->nloose++], names[i], seed);
	random_ref(&v->head, "HEAD", seed);
	if (tu_rand(seed) % 2)
		v->head.symbolic = (char *)targets[tu_rand(seed) % 5];
}

static void state_of(gw_refstate *s, const gw_refs_view *v)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(gw_refs_view_copy(v, &s->refs, &s->nrefs, &s->head), 0);
}

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void assert_updates_equal(const gw_update *a, size_t na, const gw_update *b, size_t nb)
{
	size_t i;
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++) {
		if (a[i].kind != b[i].kind || !str_eq(a[i].ref, b[i].ref) || strcmp(a[i].old_oid, b[i].old_oid) ||
		    strcmp(a[i].new_oid, b[i].new_oid) || !str_eq(a[i].old_target, b[i].old_target) ||
		    !str_eq(a[i].new_target, b[i].new_target) || a[i].time_us != b[i].time_us) {
			print_error("update %zu differs: %s vs %s\n", i, a[i].ref, b[i].ref);
			fail();
		}
	}
}

/* old after its updates: nothing left to update against cur. */
static void assert_applied(gw_refstate *old, const gw_update *u, size_t n, const gw_refs_view *cur)
{
	gw_update *rest;
	size_t nrest;
	assert_int_equal(gw_refstate_apply(old, u, n), 0);
	assert_int_equal(gw_segment_diff(old, NULL, cur, 20, 7, &rest, &nrest), 0);
	if (nrest)
		print_error("after apply, %s still differs\n", rest[0].ref);
	assert_int_equal(nrest, 0);
	gw_updates_free(rest, nrest);
}

static void test_diff_loose_equals_full(void **state)
{
	uint64_t seed = 0x5e65ULL;
	int round;
	(void)state;
	make_names();
	for (round = 0; round < 2000; round++) {
		gw_packed_refs *packed = random_packed(&seed);
		gw_refs_view seen, cur;
		gw_refstate old;
		gw_update *full, *loose;
		size_t nfull, nloose;
		int step;
		random_view(&seen, packed, &seed);
		state_of(&old, &seen);
		/* A few reads in a row over the same packed-refs, the state following each. */
		for (step = 0; step < 4; step++) {
			random_view(&cur, packed, &seed);
			assert_int_equal(gw_segment_diff(&old, NULL, &cur, 20, 42, &full, &nfull), 0);
			assert_int_equal(gw_segment_diff(&old, &seen, &cur, 20, 42, &loose, &nloose), 0);
			assert_updates_equal(full, nfull, loose, nloose);
			assert_applied(&old, full, nfull, &cur);
			gw_updates_free(full, nfull);
			gw_updates_free(loose, nloose);
			gw_refs_view_dispose(&seen);
			seen = cur;
		}
		/* packed-refs changed: the state last read says nothing any more. */
		gw_packed_refs_release(packed);
		packed = random_packed(&seed);
		random_view(&cur, packed, &seed);
		assert_int_equal(gw_segment_diff(&old, &seen, &cur, 20, 42, &full, &nfull), 0);
		assert_applied(&old, full, nfull, &cur);
		gw_updates_free(full, nfull);
		gw_refs_view_dispose(&seen);
		gw_refs_view_dispose(&cur);
		gw_packed_refs_release(packed);
		gw_refstate_dispose(&old);
	}
}

static void test_diff_everything_deleted(void **state)
{
	uint64_t seed = 99;
	gw_packed_refs *packed;
	gw_refs_view v;
	gw_refstate old;
	gw_update *u;
	size_t n, i;
	(void)state;
	make_names();
	packed = random_packed(&seed);
	random_view(&v, packed, &seed);
	state_of(&old, &v);
	assert_int_equal(gw_segment_diff(&old, &v, NULL, 20, 5, &u, &n), 0);
	assert_int_equal(n, old.nrefs);
	for (i = 0; i < n; i++) {
		assert_string_not_equal(u[i].ref, "HEAD");
		assert_true(u[i].kind == GW_UPDATE_SYMREF ? !*u[i].new_target : !*u[i].new_oid);
	}
	assert_int_equal(gw_refstate_apply(&old, u, n), 0);
	assert_int_equal(old.nrefs, 0);
	gw_updates_free(u, n);
	gw_refs_view_dispose(&v);
	gw_packed_refs_release(packed);
	gw_refstate_dispose(&old);
}

/* ---- the build, on real repositories ---- */

/* Build one segment of rel (under dir) creating refs/heads/x at new_hex: the result code. */
static int build_one(const char *dir, const char *rel, const char *new_hex, size_t hash_len)
{
	char path[512], url[512], scratch[512];
	gw_store *store;
	gw_objset *set;
	gw_update u;
	gw_segment_spec spec;
	gw_segment_result res;
	int rc;
	snprintf(url, sizeof(url), "file://%s/store", dir);
	snprintf(path, sizeof(path), "%s/set", dir);
	snprintf(scratch, sizeof(scratch), "%s", dir);
	assert_int_equal(gw_store_open(&store, url), 0);
	assert_int_equal(gw_objset_open(&set, path, hash_len), 0);
	memset(&u, 0, sizeof(u));
	u.kind = GW_UPDATE_REF;
	u.ref = "refs/heads/x";
	snprintf(u.new_oid, sizeof(u.new_oid), "%s", new_hex);
	memset(&spec, 0, sizeof(spec));
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	spec.rel = rel;
	spec.path = path;
	spec.scratch_dir = scratch;
	spec.lsn = 2;
	spec.base_lsn = 1;
	spec.hash_len = hash_len;
	spec.prev_sha256 = "";
	spec.updates = &u;
	spec.nupdates = 1;
	rc = gw_segment_build(store, set, &spec, &res);
	if (rc == 0)
		gw_segment_result_dispose(&res);
	gw_objset_free(set);
	gw_store_free(store);
	return rc;
}

static void test_build_errors(void **state)
{
	char dir[128], home[256], *tip, *tree, msg[300];
	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(home, sizeof(home), "%s/home", dir);
	mkdir(home, 0700);
	tu_git_env(home);
	assert_int_equal(tu_sh("set -e; cd %s; mkdir store; for f in sha1 sha256; do git init -q --bare --object-format=$f $f.git; "
			       "mkdir -p $f.wt/d; echo hi > $f.wt/d/a; GIT_DIR=$f.git GIT_WORK_TREE=$f.wt git add -A; "
			       "GIT_DIR=$f.git GIT_WORK_TREE=$f.wt git commit -q -m one; done",
			       dir),
			 0);
	/* SHA-256: a segment of 32-byte ids; in a generation recorded as sha1, refused, not archived wrong. */
	tip = tu_sh_out("git --git-dir=%s/sha256.git rev-parse HEAD | tr -d '\n'", dir);
	assert_int_equal(build_one(dir, "sha256.git", tip, 32), 0);
	tu_assert_err(build_one(dir, "sha256.git", tip, 20), GW_ECHANGED,
		      "repository sha256.git: its objects are now sha256, its archived generation's sha1");
	free(tip);
	/* A ref value that is not an id of the repository. */
	tu_assert_err(build_one(dir, "sha1.git", "0123", 20), GW_EINVALID,
		      "repository sha1.git: 0123 is not an object id of this repository (refs/heads/x)");
	/* A damaged tree: named, with the repository. */
	tip = tu_sh_out("git --git-dir=%s/sha1.git rev-parse HEAD | tr -d '\n'", dir);
	tree = tu_sh_out("git --git-dir=%s/sha1.git rev-parse HEAD:d | tr -d '\n'", dir);
	assert_int_equal(build_one(dir, "sha1.git", tip, 20), 0);
	{
		/* Its loose file replaced by a tree whose one entry has no mode. */
		static const char bad[] = "tree 3\0x\0y";
		unsigned char z[64];
		uLongf zn = sizeof(z);
		char path[512];
		assert_int_equal(compress2(z, &zn, (const Bytef *)bad, sizeof(bad) - 1, 1), Z_OK);
		snprintf(path, sizeof(path), "%s/sha1.git/objects/%.2s/%s", dir, tree, tree + 2);
		assert_int_equal(unlink(path), 0);
		tu_write_file(path, z, zn);
	}
	snprintf(msg, sizeof(msg), "repository sha1.git: object %s (%s/sha1.git/objects/%.2s/%s): its content does not "
		 "match its id", tree, dir, tree, tree + 2);
	tu_assert_err(build_one(dir, "sha1.git", tip, 20), GW_ECORRUPT, msg);
	{
		/* A malformed tree under its own id (git writes it with --literally), reached from a new commit. */
		char *bad = tu_sh_out("printf 'x\\0y' | git --git-dir=%s/sha1.git hash-object -t tree --literally -w --stdin "
				      "| tr -d '\n'", dir);
		char *commit = tu_sh_out("git --git-dir=%s/sha1.git commit-tree %s -m bad | tr -d '\n'", dir, bad);
		snprintf(msg, sizeof(msg), "repository sha1.git: tree %s is malformed: bad entry mode", bad);
		tu_assert_err(build_one(dir, "sha1.git", commit, 20), GW_ECORRUPT, msg);
		free(bad);
		free(commit);
	}
	/* A missing one. */
	assert_int_equal(tu_sh("rm %s/sha1.git/objects/%.2s/%s", dir, tree, tree + 2), 0);
	snprintf(msg, sizeof(msg), "repository sha1.git: object %s not found", tree);
	tu_assert_err(build_one(dir, "sha1.git", tip, 20), GW_ENOTFOUND, msg);
	free(tip);
	free(tree);
	tu_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_loose_equals_full),
		cmocka_unit_test(test_diff_everything_deleted),
		cmocka_unit_test(test_build_errors),
	};
	return tu_run_tests(tests);
}
