/*
 * Unit tests for src/backup/refs_read.c: the packed-refs parser on good and
 * malformed input, and the reader against libgit2's reference iterator (what
 * gitwal used before) on real repositories changed by real git: loose,
 * packed, symbolic and dangling refs, pack-refs midway, the packed-refs
 * cache, and a concurrent `git pack-refs` (no ref may ever be missed).
 */
#include "testutil.h"

#include "backup/refs_read.h"
#include "util/git_init.h"

#include <git2.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static char tmp[128];

static int group_setup(void **state)
{
	(void)state;
	tu_git_tmp(tmp, sizeof(tmp));
	gw_git_init();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tu_rmrf(tmp);
	return 0;
}

/* ---- the packed-refs parser ---- */

#define A40 "1111111111111111111111111111111111111111"
#define B40 "2222222222222222222222222222222222222222"
#define C40 "cccccccccccccccccccccccccccccccccccccccc"

static gw_packed_refs *parse_ok(const char *text)
{
	gw_packed_refs *p = NULL;
	int rc = gw_packed_refs_parse(&p, text, strlen(text), 20, "test packed-refs");
	if (rc != 0)
		print_error("parse failed: %s\n", gw_error_message());
	assert_int_equal(rc, 0);
	assert_non_null(p);
	return p;
}

static void parse_bad(const char *text, size_t len, const char *needle)
{
	gw_packed_refs *p = (gw_packed_refs *)1;
	tu_assert_err(gw_packed_refs_parse(&p, text, len, 20, "test packed-refs"), GW_ECORRUPT, needle);
	assert_null(p);
}

#define BAD(text, needle) parse_bad(text, sizeof(text) - 1, needle)

/* A sha256 repository's packed-refs: 64-digit ids, and 40-digit ones refused (and the other way round). */
#define A64 A40 "111111111111111111111111"
#define C64 C40 "cccccccccccccccccccccccc"

static void test_packed_parse_sha256(void **state)
{
	gw_packed_refs *p = NULL;
	unsigned char a[32], c[32];
	static const char ok[] = "# pack-refs with: peeled fully-peeled sorted \n" A64 " refs/heads/main\n" C64
				 " refs/tags/v1\n^" A64 "\n";
	(void)state;
	memset(a, 0x11, 32);
	memset(c, 0xcc, 32);
	assert_int_equal(gw_packed_refs_parse(&p, ok, sizeof(ok) - 1, 32, "test"), 0);
	assert_int_equal(p->n, 2);
	assert_memory_equal(p->refs[0].oid, a, 32);
	assert_string_equal(p->refs[1].name, "refs/tags/v1");
	assert_memory_equal(p->refs[1].oid, c, 32);
	gw_packed_refs_release(p);
	p = (gw_packed_refs *)1;
	tu_assert_err(gw_packed_refs_parse(&p, A40 " refs/heads/main\n", 57, 32, "test"), GW_ECORRUPT,
		      "not \"<64 hex digits> <ref name>\"");
	assert_null(p);
	p = (gw_packed_refs *)1;
	tu_assert_err(gw_packed_refs_parse(&p, A64 " refs/heads/main\n^" A40 "\n", 81 + 42, 32, "test"), GW_ECORRUPT,
		      "a peeled value that is not \"^<64 hex digits>\"");
	assert_null(p);
	/* A sha1 reader takes a 64-digit line for 40 digits and a name starting with hex: refused. */
	p = (gw_packed_refs *)1;
	tu_assert_err(gw_packed_refs_parse(&p, A64 " refs/heads/main\n", 81, 20, "test"), GW_ECORRUPT,
		      "not \"<40 hex digits> <ref name>\"");
	assert_null(p);
}

static void test_packed_parse_valid(void **state)
{
	gw_packed_refs *p;
	unsigned char a[20], c[20];
	(void)state;
	memset(a, 0x11, 20);
	memset(c, 0xcc, 20);

	/* Header, peeled tag, sorted. */
	p = parse_ok("# pack-refs with: peeled fully-peeled sorted \n" A40 " refs/heads/main\n" B40 " refs/tags/v1\n^" C40
		     "\n" C40 " refs/tags/v2\n");
	assert_int_equal(p->n, 3);
	assert_string_equal(p->refs[0].name, "refs/heads/main");
	assert_memory_equal(p->refs[0].oid, a, 20);
	assert_string_equal(p->refs[1].name, "refs/tags/v1");
	assert_string_equal(p->refs[2].name, "refs/tags/v2");
	assert_memory_equal(p->refs[2].oid, c, 20);
	gw_packed_refs_release(p);

	/* No header, unsorted input, upper-case hex (git and libgit2 accept it). */
	p = parse_ok("CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC refs/z\n" A40 " refs/a\n" B40 " refs/m/x\n");
	assert_int_equal(p->n, 3);
	assert_string_equal(p->refs[0].name, "refs/a");
	assert_string_equal(p->refs[1].name, "refs/m/x");
	assert_string_equal(p->refs[2].name, "refs/z");
	assert_memory_equal(p->refs[2].oid, c, 20);
	gw_packed_refs_release(p);

	/* Empty, header only, a header without traits. */
	p = parse_ok("");
	assert_int_equal(p->n, 0);
	gw_packed_refs_release(p);
	p = parse_ok("# pack-refs with: peeled \n");
	assert_int_equal(p->n, 0);
	gw_packed_refs_release(p);
	p = parse_ok("# pack-refs with:\n" A40 " refs/heads/x\n");
	assert_int_equal(p->n, 1);
	gw_packed_refs_release(p);
}

static void test_packed_parse_malformed(void **state)
{
	(void)state;
	/* Truncated: a last line without its end. */
	BAD(A40 " refs/heads/main", "line 1: truncated");
	BAD(A40 " refs/heads/main\n" B40 " refs/heads/x", "line 2: truncated");
	BAD(A40, "truncated");
	BAD("# pack-refs with: peeled", "header line is not terminated");
	BAD(A40 " refs/heads/main\n^" C40, "line 2: truncated");
	/* Short or bad object ids, a missing separator, an empty name. */
	BAD("111111111111111111111111111111111111111 refs/heads/main\n", "line 1: not \"<40 hex digits> <ref name>\"");
	BAD("111111111111111111111111111111111111111g refs/heads/main\n", "not \"<40 hex digits>");
	BAD(A40 "\trefs/heads/main\n", "not \"<40 hex digits>");
	BAD(A40 "1 refs/heads/main\n", "not \"<40 hex digits>");
	BAD(A40 " \n", "not \"<40 hex digits>");
	BAD(A40 "\n", "not \"<40 hex digits>");
	BAD("\n", "line 1: not");
	BAD(A40 " refs/heads/main\n\n", "line 2: not");
	/* Names: invalid for git, outside refs/, NUL, CRLF. */
	BAD(A40 " refs/heads/a..b\n", "not a valid ref name: 'refs/heads/a..b'");
	BAD(A40 " refs/heads/x.lock\n", "not a valid ref name");
	BAD(A40 " refs/heads/sp ace\n", "not a valid ref name");
	BAD(A40 " refs/heads/\n", "not a valid ref name");
	BAD(A40 " HEAD\n", "not a valid ref name: 'HEAD'");
	BAD(A40 " heads/main\n", "not a valid ref name");
	BAD(A40 " refs/heads/a\x01z\n", "not a valid ref name: 'refs/heads/a?z'");
	parse_bad(A40 " refs/heads/a\0b\n", sizeof(A40 " refs/heads/a\0b\n") - 1, "a NUL byte in the name");
	BAD(A40 " refs/heads/main\r\n", "line 1: a carriage return");
	BAD("# pack-refs with: sorted\r\n" A40 " refs/heads/main\r\n", "line 2: a carriage return");
	/* Peeled lines: only right after a ref, one, 40 hex digits. */
	BAD("^" C40 "\n", "line 1: a peeled value (^) that follows no ref");
	BAD("# pack-refs with: peeled\n^" C40 "\n", "line 2: a peeled value");
	BAD(A40 " refs/tags/v1\n^" C40 "\n^" C40 "\n", "line 3: a peeled value (^) that follows no ref");
	BAD(A40 " refs/tags/v1\n^" C40 "0\n", "line 2: a peeled value that is not");
	BAD(A40 " refs/tags/v1\n^cccccccccccccccccccccccccccccccccccccccz\n", "line 2: a peeled value that is not");
	BAD(A40 " refs/tags/v1\n^\n", "a peeled value that is not");
	/* Headers: only the first line, only "# pack-refs with:". */
	BAD("# some comment\n" A40 " refs/heads/main\n", "line 1: unknown header");
	BAD(A40 " refs/heads/main\n# pack-refs with: peeled\n", "line 2: not");
	/* The same name twice, sorted or not. */
	BAD(A40 " refs/heads/a\n" B40 " refs/heads/a\n", "ref refs/heads/a is listed twice");
	BAD(A40 " refs/heads/b\n" B40 " refs/heads/a\n" C40 " refs/heads/b\n", "ref refs/heads/b is listed twice");
}

/* ---- the reader against libgit2 ---- */

/* What gitwal read through libgit2 before (the old gw_source_read_refs), as the reference. */
static void oracle_fill(gw_ref *out, git_reference *ref)
{
	const git_oid *oid;
	memset(out, 0, sizeof(*out));
	out->name = strdup(git_reference_name(ref));
	if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC) {
		git_reference *resolved = NULL;
		out->symbolic = strdup(git_reference_symbolic_target(ref));
		if (git_reference_resolve(&resolved, ref) < 0 || !(oid = git_reference_target(resolved)))
			out->dangling = 1;
		else
			memcpy(out->oid, oid->id, 20);
		git_reference_free(resolved);
		return;
	}
	memcpy(out->oid, git_reference_target(ref)->id, 20);
}

static int oracle_cmp(const void *a, const void *b)
{
	return strcmp(((const gw_ref *)a)->name, ((const gw_ref *)b)->name);
}

static void oracle_read(const char *path, gw_ref **refs, size_t *n, gw_ref *head)
{
	git_repository *repo;
	git_reference_iterator *it;
	git_reference *ref;
	size_t cap = 4096;
	*n = 0;
	*refs = calloc(cap, sizeof(gw_ref));
	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	assert_int_equal(git_reference_iterator_new(&it, repo), 0);
	while (git_reference_next(&ref, it) == 0) {
		assert_true(*n < cap);
		oracle_fill(&(*refs)[(*n)++], ref);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	assert_int_equal(git_reference_lookup(&ref, repo, "HEAD"), 0);
	oracle_fill(head, ref);
	git_reference_free(ref);
	git_repository_free(repo);
	qsort(*refs, *n, sizeof(gw_ref), oracle_cmp);
}

static void assert_ref_equal(const gw_ref *want, const gw_ref *got)
{
	if (strcmp(want->name, got->name) || !want->symbolic != !got->symbolic ||
	    (want->symbolic && strcmp(want->symbolic, got->symbolic)) || want->dangling != got->dangling ||
	    memcmp(want->oid, got->oid, sizeof(want->oid))) {
		print_error("libgit2: %s -> %s dangling=%d; refs_read: %s -> %s dangling=%d\n", want->name,
			    want->symbolic ? want->symbolic : "(direct)", want->dangling, got->name,
			    got->symbolic ? got->symbolic : "(direct)", got->dangling);
		fail();
	}
}

/* The reader's view equals libgit2's listing; returns the number of refs. */
static size_t compare_with_libgit2(gw_refs_reader *rd, const char *path)
{
	gw_ref *want, *got, want_head, got_head;
	size_t nwant, ngot, i;
	gw_refs_view v;
	oracle_read(path, &want, &nwant, &want_head);
	assert_int_equal(gw_refs_read(rd, &v), 0);
	assert_int_equal(gw_refs_view_copy(&v, &got, &ngot, &got_head), 0);
	for (i = 0; i < nwant && i < ngot; i++)
		assert_ref_equal(&want[i], &got[i]);
	if (nwant != ngot)
		print_error("libgit2 lists %zu refs, refs_read %zu (first extra: %s)\n", nwant, ngot,
			    nwant > ngot ? want[ngot].name : got[nwant].name);
	assert_int_equal(nwant, ngot);
	assert_ref_equal(&want_head, &got_head);
	/* Lookups agree with the walk. */
	for (i = 0; i < ngot; i++) {
		gw_ref r;
		assert_int_equal(gw_refs_view_find(&v, got[i].name, &r), 1);
		assert_string_equal(r.name, got[i].name);
	}
	gw_refs_view_dispose(&v);
	gw_refs_free(want, nwant);
	gw_refs_free(got, ngot);
	gw_ref_dispose(&want_head);
	gw_ref_dispose(&got_head);
	return ngot;
}

#define GIT(...) assert_int_equal(tu_sh(__VA_ARGS__), 0)

static void test_reader_matches_libgit2(void **state)
{
	char repo[256];
	gw_refs_reader *rd;
	(void)state;
	snprintf(repo, sizeof(repo), "%s/a.git", tmp);
	GIT("cd %s && git init -q w && cd w && for i in 1 2 3 4; do echo $i > f; git add f; "
	    "git commit -q -m c$i; git branch b$i; done && git tag -a -m t v1 HEAD~1 && git tag light HEAD~2 && "
	    "git clone -q --bare . %s",
	    tmp, repo);
	assert_int_equal(gw_refs_reader_new(&rd, repo, "a.git", 20), 0);
	/* As cloned: everything in packed-refs (an annotated tag with its peeled line), HEAD symbolic. */
	assert_true(compare_with_libgit2(rd, repo) >= 6);

	/* Loose refs: new ones, one shadowing a packed one, nested directories. */
	GIT("cd %s && git update-ref refs/heads/new b2 && git update-ref refs/heads/b1 b3 && "
	    "git update-ref refs/heads/feature/x/y b4 && git update-ref refs/notes/n b1",
	    repo);
	compare_with_libgit2(rd, repo);

	/* Symbolic refs: to a loose ref, to a packed one, dangling, chained, to HEAD, to a pseudo-ref. */
	GIT("cd %s && git symbolic-ref refs/remotes/origin/HEAD refs/heads/new && "
	    "git symbolic-ref refs/sym/packed refs/heads/b4 && git symbolic-ref refs/sym/dangling refs/heads/nowhere && "
	    "git symbolic-ref refs/sym/c1 refs/sym/c2 && git symbolic-ref refs/sym/c2 refs/sym/packed && "
	    "git symbolic-ref refs/sym/head HEAD && git symbolic-ref refs/sym/orig ORIG_HEAD && "
	    "git rev-parse b2 > ORIG_HEAD",
	    repo);
	/* Chains: 6 lookups resolve, 7 do not (libgit2's nesting limit). */
	GIT("cd %s && for i in 1 2 3 4 5 6 7; do git symbolic-ref refs/chain/l$i refs/chain/l$((i + 1)); done && "
	    "git update-ref refs/chain/l8 b1",
	    repo);
	compare_with_libgit2(rd, repo);

	/* What git ignores: refs being written (.lock), dot-files; a loose file that is not a ref. */
	GIT("cd %s && cp refs/heads/new refs/heads/wip.lock && echo junk > refs/heads/.hidden && "
	    "echo garbage > refs/heads/b2 && printf 'ref: \\n' > refs/heads/emptysym",
	    repo);
	compare_with_libgit2(rd, repo);
	GIT("cd %s && rm refs/heads/b2 refs/heads/emptysym refs/heads/.hidden", repo);

	/* pack-refs midway: every loose ref moves into packed-refs (symbolic ones stay loose). */
	GIT("cd %s && git pack-refs --all", repo);
	compare_with_libgit2(rd, repo);
	/* Then more: delete a packed ref (packed-refs is rewritten), new loose ones over packed ones. */
	GIT("cd %s && git update-ref -d refs/heads/b3 && git update-ref refs/heads/b4 b1 && git tag -a -m t2 v2 b2",
	    repo);
	compare_with_libgit2(rd, repo);

	/* HEAD: detached, then symbolic to a branch not born yet. */
	GIT("cd %s && git update-ref --no-deref HEAD b2", repo);
	compare_with_libgit2(rd, repo);
	GIT("cd %s && git symbolic-ref HEAD refs/heads/unborn", repo);
	compare_with_libgit2(rd, repo);
	GIT("cd %s && git symbolic-ref HEAD refs/sym/c1", repo);
	compare_with_libgit2(rd, repo);

	/* No packed-refs at all. */
	GIT("cd %s && git for-each-ref --format='update %%(refname) %%(objectname)' refs/heads refs/tags | "
	    "git update-ref --stdin && rm packed-refs",
	    repo);
	compare_with_libgit2(rd, repo);
	gw_refs_reader_free(rd);
}

static void test_reader_errors(void **state)
{
	char repo[256];
	gw_refs_reader *rd;
	gw_refs_view v;
	(void)state;
	snprintf(repo, sizeof(repo), "%s/e.git", tmp);
	GIT("cd %s && git init -q --bare e.git && cd e.git && "
	    "git update-ref refs/heads/main $(git commit-tree $(git mktree < /dev/null) -m x)",
	    tmp);
	assert_int_equal(gw_refs_reader_new(&rd, repo, "e.git", 20), 0);
	assert_int_equal(compare_with_libgit2(rd, repo), 1);

	/* A file under refs/ whose name git would not accept: named. */
	GIT("cd %s && cp refs/heads/main 'refs/heads/copy~1'", repo);
	tu_assert_err(gw_refs_read(rd, &v), GW_ECORRUPT, "e.git: refs/heads/copy~1 is not a valid ref name");
	GIT("cd %s && rm 'refs/heads/copy~1'", repo);

	/* A corrupt packed-refs: repository, file and line. */
	GIT("cd %s && printf '# pack-refs with: peeled\\n%s refs/heads/p\\nzz\\n' > packed-refs", repo, A40);
	tu_assert_err(gw_refs_read(rd, &v), GW_ECORRUPT, "repository e.git: packed-refs line 3: not");
	GIT("cd %s && printf '%s refs/heads/p\\n' > packed-refs", repo, A40);
	assert_int_equal(gw_refs_read(rd, &v), 0);
	assert_true(v.packed && v.packed->n == 1);
	gw_refs_view_dispose(&v);

	/* HEAD missing or unreadable. */
	GIT("cd %s && mv HEAD HEAD.away", repo);
	tu_assert_err(gw_refs_read(rd, &v), GW_ERROR, "repository e.git: cannot read HEAD");
	GIT("cd %s && echo nonsense > HEAD", repo);
	tu_assert_err(gw_refs_read(rd, &v), GW_ERROR, "cannot read HEAD: it is neither");
	GIT("cd %s && mv HEAD.away HEAD", repo);
	assert_int_equal(gw_refs_read(rd, &v), 0);
	gw_refs_view_dispose(&v);

	/*
	 * Symbolic refs the manifest and segment parsers would refuse (refname.h):
	 * named here instead of archived unreadable. HEAD must point under refs/
	 * (a reftable repository's HEAD is "ref: refs/heads/.invalid").
	 */
	GIT("cd %s && mkdir -p refs/sym && echo 'ref: refs/heads/x..y' > refs/sym/bad", repo);
	tu_assert_err(gw_refs_read(rd, &v), GW_ECORRUPT,
		      "repository e.git: symbolic ref refs/sym/bad does not point at a valid ref name ('refs/heads/x..y'");
	GIT("cd %s && echo 'ref: ORIG_HEAD' > refs/sym/bad", repo); /* outside refs/: fine, but not for HEAD */
	assert_int_equal(gw_refs_read(rd, &v), 0);
	gw_refs_view_dispose(&v);
	GIT("cd %s && rm refs/sym/bad && cp HEAD HEAD.away && echo 'ref: refs/heads/.invalid' > HEAD", repo);
	tu_assert_err(gw_refs_read(rd, &v), GW_ECORRUPT,
		      "repository e.git: HEAD does not point at a valid ref name under refs/ ('refs/heads/.invalid')");
	GIT("cd %s && echo 'ref: ORIG_HEAD' > HEAD", repo);
	tu_assert_err(gw_refs_read(rd, &v), GW_ECORRUPT,
		      "repository e.git: HEAD does not point at a valid ref name under refs/ ('ORIG_HEAD')");
	GIT("cd %s && mv HEAD.away HEAD", repo);
	assert_int_equal(gw_refs_read(rd, &v), 0);
	gw_refs_view_dispose(&v);
	gw_refs_reader_free(rd);
}

/*
 * Wait until the clock files are stamped from (the coarse one) is in a later
 * second than now: files written before are "settled" then.
 */
static void next_second(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_REALTIME_COARSE, &a);
	do {
		struct timespec d = {0, 20 * 1000 * 1000};
		nanosleep(&d, NULL);
		clock_gettime(CLOCK_REALTIME_COARSE, &b);
	} while (b.tv_sec == a.tv_sec);
}

static void rewrite_in_place(const char *path, const char *text)
{
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void test_reader_packed_cache(void **state)
{
	char repo[256], packed[300];
	gw_refs_reader *rd;
	gw_refs_view v1, v2, v3;
	gw_ref r;
	(void)state;
	snprintf(repo, sizeof(repo), "%s/c.git", tmp);
	snprintf(packed, sizeof(packed), "%s/packed-refs", repo);
	GIT("cd %s && git init -q --bare c.git", tmp);
	tu_write_file(packed, A40 " refs/heads/a\n", strlen(A40 " refs/heads/a\n"));
	assert_int_equal(gw_refs_reader_new(&rd, repo, "c.git", 20), 0);

	/* Written in this second: not trusted, parsed again; a same-size rewrite in place is seen. */
	assert_int_equal(gw_refs_read(rd, &v1), 0);
	rewrite_in_place(packed, B40);
	assert_int_equal(gw_refs_read(rd, &v2), 0);
	assert_ptr_not_equal(v1.packed, v2.packed);
	assert_int_equal(gw_refs_view_find(&v2, "refs/heads/a", &r), 1);
	assert_int_equal(r.oid[0], 0x22);
	gw_refs_view_dispose(&v1);
	gw_refs_view_dispose(&v2);

	/* Settled: the parse is kept and shared while the file stays the same... */
	next_second();
	assert_int_equal(gw_refs_read(rd, &v1), 0);
	assert_int_equal(gw_refs_read(rd, &v2), 0);
	assert_non_null(v1.packed);
	assert_ptr_equal(v1.packed, v2.packed);
	/* ...and dropped when it changes, even in place with the same size. */
	rewrite_in_place(packed, C40);
	assert_int_equal(gw_refs_read(rd, &v3), 0);
	assert_ptr_not_equal(v3.packed, v1.packed);
	assert_int_equal(gw_refs_view_find(&v3, "refs/heads/a", &r), 1);
	assert_int_equal(r.oid[0], 0xcc);
	/* Views outlive the cache entry they came from. */
	assert_int_equal(gw_refs_view_find(&v1, "refs/heads/a", &r), 1);
	assert_int_equal(r.oid[0], 0x22);
	gw_refs_view_dispose(&v3);
	/* Replaced by git's way (write a new file, rename it over). */
	next_second();
	tu_write_file(packed, A40 " refs/heads/b\n", strlen(A40 " refs/heads/b\n"));
	assert_int_equal(gw_refs_read(rd, &v3), 0);
	assert_int_equal(gw_refs_view_find(&v3, "refs/heads/a", &r), 0);
	assert_int_equal(gw_refs_view_find(&v3, "refs/heads/b", &r), 1);
	gw_refs_view_dispose(&v3);
	/* Deleted. */
	unlink(packed);
	assert_int_equal(gw_refs_read(rd, &v3), 0);
	assert_null(v3.packed);
	gw_refs_view_dispose(&v3);
	gw_refs_reader_free(rd);
	gw_refs_view_dispose(&v1);
	gw_refs_view_dispose(&v2);
}

/*
 * A concurrent `git pack-refs --all` moves loose refs into packed-refs and
 * then deletes the loose files; meanwhile the refs are written loose again
 * (same values, the way git writes: a new file renamed over). No ref ever
 * changes value, so every read must see every ref with its value.
 */
static void test_reader_concurrent_pack_refs(void **state)
{
	char repo[256];
	gw_refs_reader *rd;
	unsigned char oid[20];
	size_t reads = 0, i;
	pid_t child;
	int status, done = 0;
	char *hex;
	(void)state;
	snprintf(repo, sizeof(repo), "%s/r.git", tmp);
	GIT("cd %s && git init -q --bare r.git && cd r.git && c=$(git commit-tree $(git mktree < /dev/null) -m x) && "
	    "for i in $(seq 100 299); do echo \"create refs/heads/s$i $c\"; done | git update-ref --stdin",
	    tmp);
	hex = tu_sh_out("git -C %s rev-parse refs/heads/s100", repo);
	assert_non_null(hex);
	assert_int_equal(gw_hex_decode(oid, hex, 20), 0);
	free(hex);
	assert_int_equal(gw_refs_reader_new(&rd, repo, "r.git", 20), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char cmd[2048];
		snprintf(cmd, sizeof(cmd),
			 "cd %s && c=$(git rev-parse refs/heads/s100) && for round in $(seq 25); do "
			 "git pack-refs --all || exit 1; "
			 "mkdir -p refs/heads; for i in $(seq 100 3 299); do echo $c > refs/heads/s$i.lock && mv refs/heads/s$i.lock refs/heads/s$i; "
			 "done; done",
			 repo);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (!done) {
		gw_refs_view v;
		gw_refs_pos pos = {0, 0};
		gw_ref r;
		size_t n = 0;
		done = waitpid(child, &status, WNOHANG) == child;
		assert_int_equal(gw_refs_read(rd, &v), 0);
		while (gw_refs_view_next(&v, &pos, &r)) {
			assert_memory_equal(r.oid, oid, 20);
			n++;
		}
		if (n != 200)
			print_error("read %zu saw %zu refs of 200\n", reads, n);
		assert_int_equal(n, 200);
		for (i = 100; i < 300; i++) {
			char name[64];
			snprintf(name, sizeof(name), "refs/heads/s%zu", i);
			assert_int_equal(gw_refs_view_find(&v, name, &r), 1);
		}
		gw_refs_view_dispose(&v);
		reads++;
	}
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(reads > 10);
	gw_refs_reader_free(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packed_parse_valid),
		cmocka_unit_test(test_packed_parse_sha256),
		cmocka_unit_test(test_packed_parse_malformed),
		cmocka_unit_test(test_reader_matches_libgit2),
		cmocka_unit_test(test_reader_errors),
		cmocka_unit_test(test_reader_packed_cache),
		cmocka_unit_test(test_reader_concurrent_pack_refs),
	};
	if (getenv("TU_FILTER"))
		cmocka_set_test_filter(getenv("TU_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
