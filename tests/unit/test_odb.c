/*
 * Unit tests for src/odb (the object reader): real repositories made with
 * real git, SHA-1 and SHA-256 (loose objects; packs with OFS_DELTA and
 * REF_DELTA chains; several packs; packs appearing while open; 64-bit pack
 * offsets; alternates), every object read back and compared byte for byte
 * with `git cat-file --batch`; hand-made packs for what git does not write
 * (REF_DELTA loops, missing bases, bad deltas); damaged files of every kind,
 * each giving an error that names the object and the file.
 */
#include "testutil.h"

#include "gitwal/io.h"
#include "gitwal/odb.h"
#include "odb/odb_internal.h"
#include "pack/pack.h"
#include "util/bytes.h"

#include <zlib.h>

static char tmp[128];
static char repo1[256], repo256[256];

/* A history with deltas (slowly changing big files), a merge, tags, a link, an empty blob and a submodule entry. */
static int make_repo(const char *repo, const char *format)
{
	return tu_sh("set -e; git init -q --bare --object-format=%s %s; wt=%s.wt; mkdir -p $wt; "
		     "export GIT_DIR=%s GIT_WORK_TREE=$wt; cd $wt; "
		     "for i in $(seq 1 24); do "
		     "  seq 1 500 | sed \"s/^/line $i /;s/line $i 1$/first/\" > big.txt; "
		     "  seq 1 300 > same.txt; echo $i >> same.txt; "
		     "  mkdir -p d/$((i %% 4)); echo \"small $i\" > d/$((i %% 4))/f$((i %% 3)).txt; "
		     "  git add -A; git commit -q -m \"commit $i\"; "
		     "  if [ $i = 8 ]; then git branch side; fi; "
		     "done; "
		     "git checkout -q side; echo side > side.txt; : > empty; ln -s big.txt link; chmod +x same.txt; "
		     "git add -A; git commit -q -m side; git checkout -q main 2>/dev/null || git checkout -q master; "
		     "git merge -q --no-ff -m merge side; "
		     "git update-index --add --cacheinfo 160000,$(git rev-parse HEAD~3),sub; git commit -q -m sub; "
		     "git tag -a v1 -m 'tag one' HEAD~2; git tag light HEAD~5; git -c advice.nestedTag=false tag -a v1.1 -m 'tag of a tag' v1",
		     format, repo, repo, repo);
}

static int group_setup(void **state)
{
	char home[256];
	(void)state;
	tu_mkdtemp(tmp, sizeof(tmp));
	snprintf(home, sizeof(home), "%s/home", tmp);
	mkdir(home, 0700);
	tu_git_env(home);
	setenv("GIT_CONFIG_PARAMETERS", "'init.defaultbranch=main'", 1);
	snprintf(repo1, sizeof(repo1), "%s/sha1.git", tmp);
	snprintf(repo256, sizeof(repo256), "%s/sha256.git", tmp);
	return make_repo(repo1, "sha1") || make_repo(repo256, "sha256") ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tu_rmrf(tmp);
	return 0;
}

/* A fresh copy of a fixture repository (the tests repack and damage theirs). */
static void copy_repo(char *out, size_t n, const char *from, const char *name)
{
	snprintf(out, n, "%s/%s", tmp, name);
	tu_rmrf(out);
	assert_int_equal(tu_sh("cp -a %s %s", from, out), 0);
}

static size_t hash_len_of(const char *repo)
{
	return strstr(repo, "256") ? 32 : 20;
}

static gw_odb *open_odb(const char *repo)
{
	gw_odb *odb = NULL;
	int rc = gw_odb_open(&odb, repo, NULL);
	if (rc < 0)
		print_error("gw_odb_open(%s): %s\n", repo, gw_error_message());
	assert_int_equal(rc, 0);
	return odb;
}

/*
 * Every object git lists (with its alternates), read through odb and
 * compared with `git cat-file --batch`: type, size, bytes; the header and
 * presence too. Returns how many.
 */
static size_t compare_all(gw_odb *odb, const char *repo)
{
	char path[512];
	unsigned char *all, *p, *end;
	size_t len, n = 0, hl = gw_odb_hash_len(odb);
	snprintf(path, sizeof(path), "%s/batch.out", tmp);
	assert_int_equal(tu_sh("git --git-dir=%s cat-file --batch-all-objects --batch > %s", repo, path), 0);
	all = tu_read_file(path, &len);
	for (p = all, end = all + len; p < end; n++) {
		char hex[GW_HEX_MAX], tname[16];
		unsigned long long size;
		unsigned char *nl = memchr(p, '\n', (size_t)(end - p)), *data = NULL;
		size_t got_len = 0;
		uint64_t hsize = 0;
		gw_object_t type, htype;
		gw_oid oid;
		int rc;
		assert_non_null(nl);
		*nl = '\0';
		assert_int_equal(sscanf((char *)p, "%64s %15s %llu", hex, tname, &size), 3);
		assert_int_equal(strlen(hex), 2 * hl);
		assert_int_equal(gw_oid_from_hex(&oid, hex, hl), 0);
		p = nl + 1;
		rc = gw_odb_read(odb, &oid, &type, &data, &got_len);
		if (rc < 0)
			print_error("%s: %s\n", hex, gw_error_message());
		assert_int_equal(rc, 0);
		assert_string_equal(gw_object_type_name(type), tname);
		assert_int_equal(got_len, size);
		assert_memory_equal(data, p, size);
		assert_int_equal(data[got_len], 0);
		free(data);
		assert_int_equal(gw_odb_read_header(odb, &oid, &htype, &hsize), 0);
		assert_int_equal(htype, type);
		assert_int_equal(hsize, size);
		assert_int_equal(gw_odb_exists(odb, &oid), 1);
		p += size;
		assert_true(p < end && *p == '\n');
		p++;
	}
	free(all);
	return n;
}

static void rev_parse(const char *repo, const char *rev, gw_oid *oid)
{
	char *out = tu_sh_out("git --git-dir=%s rev-parse %s", repo, rev);
	assert_non_null(out);
	out[strcspn(out, "\n")] = '\0';
	assert_int_equal(gw_oid_from_hex(oid, out, hash_len_of(repo)), 0);
	free(out);
}

/* How many entries of each type (1..7) the repository's packs hold, from their own headers. */
static void count_entry_types(const char *repo, size_t counts[8])
{
	char *list = tu_sh_out("for i in %s/objects/pack/*.idx; do [ -e $i ] || continue; git --git-dir=%s show-index --object-format=%s < $i "
			       "| sed \"s|^|${i%%.idx}.pack |\"; done",
			       repo, repo, hash_len_of(repo) == 32 ? "sha256" : "sha1");
	char *line, *save = NULL;
	memset(counts, 0, 8 * sizeof(size_t));
	assert_non_null(list);
	for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char pack[512];
		unsigned long long off;
		unsigned char buf[16];
		uint64_t size;
		int type;
		FILE *f;
		assert_int_equal(sscanf(line, "%511s %llu", pack, &off), 2);
		assert_non_null(f = fopen(pack, "rb"));
		assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
		assert_true(fread(buf, 1, sizeof(buf), f) > 0);
		fclose(f);
		assert_true(gw_pack_parse_header(buf, sizeof(buf), &type, &size) > 0);
		counts[type & 7]++;
	}
	free(list);
}

/* ---- real repositories ---- */

static void check_loose(const char *fixture, const char *name)
{
	char repo[256];
	gw_odb *odb;
	size_t counts[8];
	copy_repo(repo, sizeof(repo), fixture, name);
	count_entry_types(repo, counts); /* no packs: nothing counted */
	assert_int_equal(counts[1] + counts[2] + counts[3] + counts[4] + counts[6] + counts[7], 0);
	odb = open_odb(repo);
	assert_int_equal(gw_odb_hash_len(odb), hash_len_of(repo));
	assert_true(compare_all(odb, repo) > 100);
	gw_odb_free(odb);
}

static void test_loose_sha1(void **state)
{
	(void)state;
	check_loose(repo1, "loose1.git");
}

static void test_loose_sha256(void **state)
{
	(void)state;
	check_loose(repo256, "loose256.git");
}

/* Packed by `git repack -a -d -f` with long chains: OFS_DELTA, or with ofs_deltas off REF_DELTA. */
static void check_packed(const char *fixture, const char *name, int ofs)
{
	char repo[256];
	gw_odb *odb;
	size_t counts[8], n;
	copy_repo(repo, sizeof(repo), fixture, name);
	assert_int_equal(tu_sh("git --git-dir=%s -c repack.useDeltaBaseOffset=%s repack -q -a -d -f --depth=50 "
			       "--window=50",
			       repo, ofs ? "true" : "false"),
			 0);
	count_entry_types(repo, counts);
	assert_true(counts[ofs ? 6 : 7] > 20);
	assert_int_equal(counts[ofs ? 7 : 6], 0);
	odb = open_odb(repo);
	n = compare_all(odb, repo);
	assert_int_equal(n, counts[1] + counts[2] + counts[3] + counts[4] + counts[6] + counts[7]);
	/* Again, with the delta bases cached this time. */
	assert_int_equal(compare_all(odb, repo), n);
	gw_odb_free(odb);
}

static void test_packed_ofs_sha1(void **state)
{
	(void)state;
	check_packed(repo1, "ofs1.git", 1);
}

static void test_packed_ofs_sha256(void **state)
{
	(void)state;
	check_packed(repo256, "ofs256.git", 1);
}

static void test_packed_ref_sha1(void **state)
{
	(void)state;
	check_packed(repo1, "ref1.git", 0);
}

static void test_packed_ref_sha256(void **state)
{
	(void)state;
	check_packed(repo256, "ref256.git", 0);
}

/* gc --aggressive, then more commits packed incrementally: several packs and loose objects at once. */
static void check_mixed(const char *fixture, const char *name)
{
	char repo[256];
	gw_odb *odb;
	copy_repo(repo, sizeof(repo), fixture, name);
	assert_int_equal(tu_sh("set -e; export GIT_DIR=%s GIT_WORK_TREE=%s.wt; git gc -q --aggressive; "
			       "cd $GIT_WORK_TREE; for i in 1 2 3; do echo more $i >> big.txt; git commit -q -am more$i; "
			       "git repack -q -d; done; echo loose >> big.txt; git commit -q -am loose",
			       repo, fixture),
			 0);
	odb = open_odb(repo);
	assert_true(compare_all(odb, repo) > 100);
	gw_odb_free(odb);
}

static void test_mixed_sha1(void **state)
{
	(void)state;
	check_mixed(repo1, "mixed1.git");
}

static void test_mixed_sha256(void **state)
{
	(void)state;
	check_mixed(repo256, "mixed256.git");
}

/* git writes while the database is open: new packs are found, and a loose object packed away is found again. */
static void check_live(const char *fixture, const char *name)
{
	char repo[256];
	unsigned char *data;
	size_t len;
	gw_object_t type;
	gw_oid a, b;
	gw_odb *odb;
	copy_repo(repo, sizeof(repo), fixture, name);
	assert_int_equal(tu_sh("git --git-dir=%s repack -q -a -d", repo), 0);
	odb = open_odb(repo);
	/* A new commit, packed into a new pack, its loose copies removed. */
	assert_int_equal(tu_sh("set -e; export GIT_DIR=%s GIT_WORK_TREE=%s.wt; cd $GIT_WORK_TREE; "
			       "echo live >> big.txt; git commit -q -am live; git repack -q -d",
			       repo, fixture),
			 0);
	rev_parse(repo, "HEAD", &a);
	assert_int_equal(gw_odb_read(odb, &a, &type, &data, &len), 0);
	assert_int_equal(type, GW_OBJECT_COMMIT);
	free(data);
	/* Read while loose, then everything repacked into one pack and the old ones deleted: still readable. */
	assert_int_equal(tu_sh("set -e; export GIT_DIR=%s GIT_WORK_TREE=%s.wt; cd $GIT_WORK_TREE; "
			       "echo live2 >> big.txt; git commit -q -am live2",
			       repo, fixture),
			 0);
	rev_parse(repo, "HEAD", &b);
	assert_int_equal(gw_odb_exists(odb, &b), 1);
	assert_int_equal(tu_sh("git --git-dir=%s repack -q -a -d && git --git-dir=%s prune-packed", repo, repo), 0);
	assert_int_equal(gw_odb_read(odb, &b, &type, &data, &len), 0);
	free(data);
	assert_true(compare_all(odb, repo) > 100);
	gw_odb_free(odb);
}

static void test_live_sha1(void **state)
{
	(void)state;
	check_live(repo1, "live1.git");
}

static void test_live_sha256(void **state)
{
	(void)state;
	check_live(repo256, "live256.git");
}

/*
 * An index with every offset but the first object's in the 64-bit table
 * (git's own test switch, --index-version=2,<offset>: those above 12).
 */
static void check_large_offsets(const char *fixture, const char *name)
{
	char repo[256];
	gw_odb *odb;
	copy_repo(repo, sizeof(repo), fixture, name);
	assert_int_equal(tu_sh("set -e; cd %s/objects/pack; git --git-dir=%s repack -q -a -d; "
			       "for p in pack-*.pack; do rm ${p%%.pack}.idx; "
			       "git --git-dir=%s index-pack --index-version=2,12 $p >/dev/null; done",
			       repo, repo, repo),
			 0);
	odb = open_odb(repo);
	assert_int_equal(odb->sources[0].npacks, 1);
	assert_int_equal(odb->sources[0].packs[0]->idx.large_count, odb->sources[0].packs[0]->idx.count - 1);
	assert_true(compare_all(odb, repo) > 100);
	gw_odb_free(odb);
}

static void test_large_offsets_sha1(void **state)
{
	(void)state;
	check_large_offsets(repo1, "large1.git");
}

static void test_large_offsets_sha256(void **state)
{
	(void)state;
	check_large_offsets(repo256, "large256.git");
}

/*
 * gw_pack_write_objects over the reader: every object of the repository
 * into one pack of whole objects, which git verifies and indexes exactly
 * as the writer did.
 */
static void check_write_objects(const char *fixture, const char *name)
{
	char repo[256], base[300], *list, *line, *save = NULL, *pack = NULL, *idx = NULL;
	unsigned char *oids = NULL, *ours, *theirs;
	size_t n = 0, hl = hash_len_of(fixture), a, b;
	gw_odb *odb;
	copy_repo(repo, sizeof(repo), fixture, name);
	assert_int_equal(tu_sh("git --git-dir=%s repack -q -a -d", repo), 0);
	list = tu_sh_out("git --git-dir=%s cat-file --batch-all-objects --batch-check='%%(objectname)'", repo);
	assert_non_null(list);
	for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_non_null(oids = realloc(oids, (n + 1) * hl));
		assert_int_equal(gw_hex_decode(oids + n++ * hl, line, hl), 0);
	}
	odb = open_odb(repo);
	snprintf(base, sizeof(base), "%s/written", tmp);
	assert_int_equal(gw_pack_write_objects(odb, oids, n, base, &pack, &idx), 0);
	gw_odb_free(odb);
	assert_int_equal(tu_sh("git --git-dir=%s verify-pack %s && git --git-dir=%s index-pack -o %s/again.idx %s > /dev/null",
			       repo, idx, repo, tmp, pack),
			 0);
	ours = tu_read_file(idx, &a);
	snprintf(base, sizeof(base), "%s/again.idx", tmp);
	theirs = tu_read_file(base, &b);
	assert_int_equal(a, b);
	assert_memory_equal(ours, theirs, a);
	assert_int_equal(a, 8 + 1024 + n * (hl + 8) + 2 * hl);
	unlink(pack);
	unlink(idx);
	unlink(base);
	free(ours);
	free(theirs);
	free(pack);
	free(idx);
	free(oids);
	free(list);
}

static void test_write_objects_sha1(void **state)
{
	(void)state;
	check_write_objects(repo1, "write1.git");
}

static void test_write_objects_sha256(void **state)
{
	(void)state;
	check_write_objects(repo256, "write256.git");
}

/* ---- alternates ---- */

static void test_alternates(void **state)
{
	char pool[256], fork[256], other[256], msg[512];
	gw_odb_options opts = {0};
	gw_object_t type;
	uint64_t size;
	gw_odb *odb;
	gw_oid tip;
	(void)state;
	/* A pool holding everything, a fork borrowing from it (relative path) with one commit of its own. */
	snprintf(other, sizeof(other), "%s/alt", tmp);
	mkdir(other, 0700);
	copy_repo(pool, sizeof(pool), repo1, "alt/pool.git");
	snprintf(fork, sizeof(fork), "%s/alt/fork.git", tmp);
	assert_int_equal(tu_sh("set -e; git --git-dir=%s repack -q -a -d; git init -q --bare %s; "
			       "echo ../../pool.git/objects > %s/objects/info/alternates; mkdir -p %s.wt; "
			       "export GIT_DIR=%s GIT_WORK_TREE=%s.wt; git fetch -q %s main:main; git reset -q main; "
			       "cd $GIT_WORK_TREE; echo fork > newfile; git add newfile; git commit -q -m fork; "
			       "test -z \"$(ls $GIT_DIR/objects/pack)\"",
			       pool, fork, fork, fork, fork, fork, pool),
			 0);
	rev_parse(fork, "HEAD~1", &tip); /* the pool's */
	/* Not asked to follow: absent, and the message says why. */
	odb = open_odb(fork);
	assert_int_equal(gw_odb_exists(odb, &tip), 0);
	tu_assert_err(gw_odb_read_header(odb, &tip, &type, &size), GW_ENOTFOUND, "alternates was not followed");
	gw_odb_free(odb);
	/* Followed: every object of both. */
	opts.alternates = 1;
	opts.root = tmp;
	assert_int_equal(gw_odb_open(&odb, fork, &opts), 0);
	assert_int_equal(gw_odb_exists(odb, &tip), 1);
	assert_true(compare_all(odb, fork) > 100);
	gw_odb_free(odb);

	/* Outside the root. */
	opts.root = other;
	assert_int_equal(tu_sh("echo %s/sha256.git/objects > %s/objects/info/alternates", tmp, fork), 0);
	snprintf(msg, sizeof(msg), "alternate %s/sha256.git/objects (%s/objects/info/alternates line 1) leaves the root",
		 tmp, fork);
	tu_assert_err(gw_odb_open(&odb, fork, &opts), GW_EINVALID, msg);
	assert_null(odb);
	/* Missing, commented, quoted. */
	assert_int_equal(tu_sh("printf '# comment\\n\\n../nowhere\\n' > %s/objects/info/alternates", fork), 0);
	tu_assert_err(gw_odb_open(&odb, fork, &opts), GW_EINVALID, "alternate ../nowhere");
	tu_assert_msg_has("line 3) is not a directory");
	assert_int_equal(tu_sh("printf '\"../../p\\\\157ol.git/objects\"\\n' > %s/objects/info/alternates", fork), 0);
	assert_int_equal(gw_odb_open(&odb, fork, &opts), 0);
	assert_int_equal(odb->nsources, 2);
	gw_odb_free(odb);
	assert_int_equal(tu_sh("printf '\"../x\\\\q\"\\n' > %s/objects/info/alternates", fork), 0);
	tu_assert_err(gw_odb_open(&odb, fork, &opts), GW_EINVALID, "line 1 is badly quoted");
	/* A loop: the pool borrowing from the fork. */
	assert_int_equal(tu_sh("echo ../../pool.git/objects > %s/objects/info/alternates; "
			       "echo %s/objects > %s/objects/info/alternates",
			       fork, fork, pool),
			 0);
	snprintf(msg, sizeof(msg), "alternate %s/objects (%s/objects/info/alternates line 1) loops back", fork, pool);
	tu_assert_err(gw_odb_open(&odb, fork, &opts), GW_EINVALID, msg);
	/* A diamond is not a loop: the pool reached twice is read once. */
	assert_int_equal(tu_sh("set -e; git init -q --bare %s/alt/mid.git; "
			       "echo ../../pool.git/objects > %s/alt/mid.git/objects/info/alternates; rm %s/objects/info/alternates; "
			       "printf '../../pool.git/objects\\n../../mid.git/objects\\n' > %s/objects/info/alternates",
			       tmp, tmp, pool, fork),
			 0);
	assert_int_equal(gw_odb_open(&odb, fork, &opts), 0);
	assert_int_equal(odb->nsources, 3);
	gw_odb_free(odb);
	/* Deeper than git's 5. */
	assert_int_equal(tu_sh("set -e; cd %s/alt; for i in 1 2 3 4 5 6; do git init -q --bare c$i.git; done; "
			       "for i in 1 2 3 4 5; do echo ../../c$((i + 1)).git/objects > c$i.git/objects/info/alternates; "
			       "done; echo ../../c1.git/objects > %s/objects/info/alternates",
			       tmp, fork),
			 0);
	tu_assert_err(gw_odb_open(&odb, fork, &opts), GW_EINVALID, "nests deeper than 5 alternates");
	tu_assert_msg_has("c5.git/objects/info/alternates line 1");
	assert_int_equal(tu_sh("rm %s/alt/c5.git/objects/info/alternates", tmp), 0);
	assert_int_equal(gw_odb_open(&odb, fork, &opts), 0);
	assert_int_equal(odb->nsources, 6);
	gw_odb_free(odb);
}

/* ---- the object format ---- */

static void test_object_format(void **state)
{
	char repo[256], msg[300];
	size_t hl;
	gw_odb *odb;
	(void)state;
	assert_int_equal(gw_repo_object_format(repo1, "a", &hl), 0);
	assert_int_equal(hl, 20);
	assert_int_equal(gw_repo_object_format(repo256, "b", &hl), 0);
	assert_int_equal(hl, 32);
	/* No config at all: git's defaults. */
	snprintf(repo, sizeof(repo), "%s/nocfg.git", tmp);
	assert_int_equal(tu_sh("git init -q --bare %s && rm %s/config", repo, repo), 0);
	assert_int_equal(gw_repo_object_format(repo, "c", &hl), 0);
	assert_int_equal(hl, 20);
	/* An objects directory: the format comes from its repository. */
	snprintf(repo, sizeof(repo), "%s/objects", repo256);
	odb = open_odb(repo);
	assert_int_equal(gw_odb_hash_len(odb), 32);
	gw_odb_free(odb);
	/* What git refuses. */
	copy_repo(repo, sizeof(repo), repo256, "fmt.git");
	assert_int_equal(tu_sh("git config --file %s/config core.repositoryformatversion 0", repo), 0);
	tu_assert_err(gw_repo_object_format(repo, "fmt.git", &hl), GW_EUNSUPPORTED,
		      "repository fmt.git sets extensions.objectformat=sha256 with core.repositoryformatversion=0");
	tu_assert_err(gw_odb_open(&odb, repo, NULL), GW_EUNSUPPORTED, "core.repositoryformatversion=0");
	assert_int_equal(tu_sh("git config --file %s/config core.repositoryformatversion 1 && "
			       "git config --file %s/config extensions.objectformat sha512",
			       repo, repo),
			 0);
	tu_assert_err(gw_repo_object_format(repo, "fmt.git", &hl), GW_EUNSUPPORTED,
		      "repository fmt.git uses object format 'sha512'");
	assert_int_equal(tu_sh("printf '[core\\n' > %s/config", repo), 0);
	snprintf(msg, sizeof(msg), "repository fmt.git: cannot read %s/config", repo);
	tu_assert_err(gw_repo_object_format(repo, "fmt.git", &hl), GW_ERROR, msg);
	/* Forced, and a wrong size. */
	{
		gw_odb_options o = {.hash_len = 20, .label = "forced"};
		gw_oid oid;
		assert_int_equal(gw_odb_open(&odb, repo1, &o), 0);
		rev_parse(repo256, "HEAD", &oid);
		tu_assert_err(gw_odb_exists(odb, &oid), GW_EINVALID, "an object id of 32 bytes, the repository's have 20");
		gw_odb_free(odb);
		o.hash_len = 21;
		tu_assert_err(gw_odb_open(&odb, repo1, &o), GW_EINVALID, "not 21");
	}
	tu_assert_err(gw_odb_open(&odb, "/nonexistent/x.git", NULL), GW_ENOTFOUND, "no objects directory");
}

static void test_oid_hex(void **state)
{
	gw_oid a, b;
	char hex[GW_HEX_MAX];
	(void)state;
	assert_int_equal(gw_oid_from_hex(&a, "0123456789ABCDEF0123456789abcdef01234567", 20), 0);
	assert_string_equal(gw_oid_to_hex(hex, &a), "0123456789abcdef0123456789abcdef01234567");
	gw_oid_from_raw(&b, a.id, 20);
	assert_true(gw_oid_equal(&a, &b));
	b.len = 32;
	assert_false(gw_oid_equal(&a, &b));
	tu_assert_err(gw_oid_from_hex(&a, "0123", 20), GW_EINVALID, "'0123' is not an object id of 40 hex digits");
	tu_assert_err(gw_oid_from_hex(&a, "0123456789abcdef0123456789abcdef0123456g", 20), GW_EINVALID, "40 hex");
	tu_assert_err(gw_oid_from_hex(&a, "0123456789abcdef0123456789abcdef012345670", 20), GW_EINVALID, "40 hex");
	assert_int_equal(gw_oid_from_hex(&a, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 32), 0);
	assert_int_equal(a.len, 32);
	assert_null(gw_object_type_name(GW_OBJECT_INVALID));
	assert_null(gw_object_type_name((gw_object_t)6));
}

/* ---- parsers ---- */

static void test_parse_real(void **state)
{
	const char *repos[] = {repo1, repo256};
	int r;
	(void)state;
	for (r = 0; r < 2; r++) {
		gw_odb *odb = open_odb(repos[r]);
		gw_oid merge, tag, tree, want;
		unsigned char *data;
		size_t len;
		gw_object_t type;
		gw_commit_links c;
		gw_tree_iter it;
		gw_tree_entry e;
		int kinds[8] = {0}, rc;
		char *names;
		/* The merge: two parents, in order. */
		rev_parse(repos[r], "HEAD~1", &merge);
		assert_int_equal(gw_odb_read(odb, &merge, &type, &data, &len), 0);
		assert_int_equal(gw_commit_parse(&c, data, len, &merge), 0);
		free(data);
		rev_parse(repos[r], "HEAD~1^{tree}", &want);
		assert_true(gw_oid_equal(&c.tree, &want));
		assert_int_equal(c.nparents, 2);
		rev_parse(repos[r], "HEAD~1^1", &want);
		assert_true(gw_oid_equal(&c.parents[0], &want));
		rev_parse(repos[r], "HEAD~1^2", &want);
		assert_true(gw_oid_equal(&c.parents[1], &want));
		gw_commit_links_dispose(&c);
		/* The root commit: none. */
		rev_parse(repos[r], "main~25", &want);
		assert_int_equal(gw_odb_read(odb, &want, &type, &data, &len), 0);
		assert_int_equal(gw_commit_parse(&c, data, len, &want), 0);
		assert_int_equal(c.nparents, 0);
		assert_null(c.parents);
		free(data);
		/* A tag of a tag. */
		rev_parse(repos[r], "v1.1", &tag);
		assert_int_equal(gw_odb_read(odb, &tag, &type, &data, &len), 0);
		assert_int_equal(type, GW_OBJECT_TAG);
		assert_int_equal(gw_tag_parse(&want, &type, data, len, &tag), 0);
		free(data);
		assert_int_equal(type, GW_OBJECT_TAG);
		rev_parse(repos[r], "v1", &tag);
		assert_true(gw_oid_equal(&want, &tag));
		/* The tip's tree: every kind of entry, as git lists them. */
		rev_parse(repos[r], "HEAD^{tree}", &tree);
		assert_int_equal(gw_odb_read(odb, &tree, &type, &data, &len), 0);
		names = tu_sh_out("git --git-dir=%s ls-tree HEAD | awk '{printf \"%%s %%s %%s %%s\\n\", $1, $2, $3, $4}'",
				  repos[r]);
		assert_non_null(names);
		gw_tree_iter_init(&it, data, len, &tree);
		{
			char *line = names, hex[GW_HEX_MAX], expect[600];
			while ((rc = gw_tree_next(&it, &e)) == 1) {
				char *nl = strchr(line, '\n');
				assert_non_null(nl);
				*nl = '\0';
				snprintf(expect, sizeof(expect), "%06o %s %s %.*s", e.mode,
					 gw_object_type_name(gw_tree_entry_type(e.mode)), gw_oid_to_hex(hex, &e.oid),
					 (int)e.name_len, e.name);
				assert_string_equal(expect, line);
				kinds[gw_tree_entry_type(e.mode)]++;
				line = nl + 1;
			}
			assert_int_equal(rc, 0);
			assert_string_equal(line, "");
		}
		assert_true(kinds[GW_OBJECT_TREE] && kinds[GW_OBJECT_BLOB] && kinds[GW_OBJECT_COMMIT]);
		free(names);
		free(data);
		gw_odb_free(odb);
	}
}

static void test_parse_malformed(void **state)
{
	gw_oid id, t;
	gw_object_t type;
	gw_commit_links c;
	gw_tree_iter it;
	gw_tree_entry e;
	const char *tree_hex = "tree 0123456789abcdef0123456789abcdef01234567\n";
	char buf[400];
	unsigned char tr[64];
	(void)state;
	gw_oid_from_hex(&id, "ffffffffffffffffffffffffffffffffffffffff", 20);
	tu_assert_err(gw_commit_parse(&c, (const unsigned char *)"author x\n", 9, &id), GW_ECORRUPT,
		      "commit ffffffffffffffffffffffffffffffffffffffff is malformed: no tree line first");
	/* The id of a SHA-256 repository's length is not a SHA-1 one. */
	tu_assert_err(gw_commit_parse(&c, (const unsigned char *)tree_hex, strlen(tree_hex),
				      &(gw_oid){.len = 32}),
		      GW_ECORRUPT, "no tree line first");
	snprintf(buf, sizeof(buf), "%sparent 0123456789abcdef0123456789abcdef0123456z\nauthor x\n", tree_hex);
	tu_assert_err(gw_commit_parse(&c, (const unsigned char *)buf, strlen(buf), &id), GW_ECORRUPT, "bad parent line");
	snprintf(buf, sizeof(buf), "%sparent 0123456789abcdef0123456789abcdef01234567", tree_hex); /* no newline */
	tu_assert_err(gw_commit_parse(&c, (const unsigned char *)buf, strlen(buf), &id), GW_ECORRUPT, "bad parent line");
	tu_assert_err(gw_commit_parse(&c, (const unsigned char *)tree_hex, strlen(tree_hex) - 1, &id), GW_ECORRUPT,
		      "no tree line");
	tu_assert_err(gw_tag_parse(&t, &type, (const unsigned char *)"type commit\n", 12, &id), GW_ECORRUPT,
		      "tag ffffffffffffffffffffffffffffffffffffffff is malformed: no object line first");
	snprintf(buf, sizeof(buf), "object 0123456789abcdef0123456789abcdef01234567\ntype blob");
	tu_assert_err(gw_tag_parse(&t, &type, (const unsigned char *)buf, strlen(buf), &id), GW_ECORRUPT, "no type line");
	snprintf(buf, sizeof(buf), "object 0123456789abcdef0123456789abcdef01234567\ntype ofs\n");
	tu_assert_err(gw_tag_parse(&t, &type, (const unsigned char *)buf, strlen(buf), &id), GW_ECORRUPT,
		      "unknown target type");
	/* Trees: bad mode, no name, truncated id; a good entry first. */
	memcpy(tr, "100644 a\0", 9);
	memset(tr + 9, 0xab, 20);
	memcpy(tr + 29, "1x0644 b\0", 9);
	gw_tree_iter_init(&it, tr, 38, &id);
	assert_int_equal(gw_tree_next(&it, &e), 1);
	assert_int_equal(e.mode, 0100644);
	assert_int_equal(e.name_len, 1);
	tu_assert_err(gw_tree_next(&it, &e), GW_ECORRUPT, "tree ffffffffffffffffffffffffffffffffffffffff is malformed: bad entry mode");
	gw_tree_iter_init(&it, (const unsigned char *)"40000 \0", 7, &id);
	tu_assert_err(gw_tree_next(&it, &e), GW_ECORRUPT, "bad entry name");
	gw_tree_iter_init(&it, (const unsigned char *)"40000 x", 7, &id);
	tu_assert_err(gw_tree_next(&it, &e), GW_ECORRUPT, "bad entry name");
	gw_tree_iter_init(&it, tr, 28, &id);
	tu_assert_err(gw_tree_next(&it, &e), GW_ECORRUPT, "truncated entry id");
	gw_tree_iter_init(&it, (const unsigned char *)"12345670 x\0", 11, &id);
	tu_assert_err(gw_tree_next(&it, &e), GW_ECORRUPT, "bad entry mode");
	assert_int_equal(gw_tree_entry_type(0100755), GW_OBJECT_BLOB);
	assert_int_equal(gw_tree_entry_type(0120000), GW_OBJECT_BLOB);
	assert_int_equal(gw_tree_entry_type(040000), GW_OBJECT_TREE);
	assert_int_equal(gw_tree_entry_type(0160000), GW_OBJECT_COMMIT);
	assert_int_equal(gw_tree_entry_type(0), GW_OBJECT_INVALID);
}

/* ---- hand-made packs ---- */

typedef struct {
	int type;                     /* 1..4, 6, 7 */
	const unsigned char *data;    /* whole object or delta */
	size_t len;
	size_t base;                  /* OFS_DELTA: index of the base entry */
	gw_oid ref;                   /* REF_DELTA: base id */
	gw_oid id;                    /* listed in the index under this id */
	uint64_t offset;
	uint32_t crc;
} hm_entry;

static size_t deflate_into(unsigned char *out, size_t cap, const unsigned char *in, size_t len)
{
	uLongf n = cap;
	assert_int_equal(compress2(out, &n, in, len, 1), Z_OK);
	return n;
}

static void object_id(gw_oid *oid, size_t hl, int type, const unsigned char *data, size_t len)
{
	char head[40];
	size_t n = odb_object_header(head, (gw_object_t)type, len);
	gw_hash *h;
	assert_int_equal(gw_hash_new(&h, hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256), 0);
	gw_hash_update(h, head, n);
	gw_hash_update(h, data, len);
	gw_hash_final(h, oid->id);
	gw_hash_free(h);
	oid->len = hl;
}

static int hm_cmp(const void *a, const void *b)
{
	return memcmp(((const hm_entry *const *)a)[0]->id.id, ((const hm_entry *const *)b)[0]->id.id,
		      ((const hm_entry *const *)a)[0]->id.len);
}

/*
 * Write <dir>/objects/pack/pack-test.pack and .idx from entries (ids
 * given); with `large`, every offset but the first id's in the 64-bit table
 * (git accepts no more: the first object of a pack cannot lie past 2 GiB).
 */
static void write_pack(const char *repo, size_t hl, hm_entry *es, size_t n, int large)
{
	unsigned char *pack = malloc(1 << 20), *idx = malloc(1 << 20), *p;
	const hm_entry **sorted = calloc(n, sizeof(*sorted));
	char path[512];
	size_t i, plen, ilen;
	uint32_t fan[256] = {0};
	assert_non_null(pack);
	assert_non_null(idx);
	memcpy(pack, "PACK\0\0\0\2", 8);
	gw_put_be32(pack + 8, (uint32_t)n);
	plen = 12;
	for (i = 0; i < n; i++) {
		hm_entry *e = &es[i];
		size_t start = plen;
		e->offset = plen;
		plen += gw_pack_encode_header(pack + plen, e->type, e->len);
		if (e->type == GW_OBJ_OFS_DELTA)
			plen += gw_pack_encode_ofs(pack + plen, e->offset - es[e->base].offset);
		else if (e->type == GW_OBJ_REF_DELTA) {
			memcpy(pack + plen, e->ref.id, hl);
			plen += hl;
		}
		plen += deflate_into(pack + plen, (1 << 20) - plen, e->data, e->len);
		e->crc = (uint32_t)crc32(0, pack + start, (uInt)(plen - start));
		sorted[i] = e;
	}
	gw_hash_buffer(hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256, pack, plen, pack + plen);
	plen += hl;
	qsort(sorted, n, sizeof(*sorted), hm_cmp);
	memcpy(idx, "\377tOc\0\0\0\2", 8);
	for (i = 0; i < n; i++)
		fan[sorted[i]->id.id[0]]++;
	for (i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	for (i = 0; i < 256; i++)
		gw_put_be32(idx + 8 + 4 * i, fan[i]);
	p = idx + 8 + 1024;
	for (i = 0; i < n; i++, p += hl)
		memcpy(p, sorted[i]->id.id, hl);
	for (i = 0; i < n; i++, p += 4)
		gw_put_be32(p, sorted[i]->crc);
	for (i = 0; i < n; i++, p += 4)
		gw_put_be32(p, large && i ? 0x80000000u | (uint32_t)(i - 1) : (uint32_t)sorted[i]->offset);
	for (i = 1; large && i < n; i++, p += 8)
		gw_put_be64(p, sorted[i]->offset);
	memcpy(p, pack + plen - hl, hl);
	p += hl;
	gw_hash_buffer(hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256, idx, (size_t)(p - idx), p);
	ilen = (size_t)(p - idx) + hl;
	snprintf(path, sizeof(path), "%s/objects/pack/pack-test.pack", repo);
	tu_write_file(path, pack, plen);
	snprintf(path, sizeof(path), "%s/objects/pack/pack-test.idx", repo);
	tu_write_file(path, idx, ilen);
	free(pack);
	free(idx);
	free(sorted);
}

/* A delta: copy base[off, off+len), then insert text. */
static size_t make_delta(unsigned char *out, size_t base_len, size_t result_len, size_t off, size_t len,
			 const char *text)
{
	size_t n = 0, t = strlen(text);
	for (size_t v = base_len;; v >>= 7) {
		out[n++] = (unsigned char)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
		if (!(v >> 7))
			break;
	}
	for (size_t v = result_len;; v >>= 7) {
		out[n++] = (unsigned char)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
		if (!(v >> 7))
			break;
	}
	out[n++] = 0x80 | 0x01 | 0x02 | 0x10 | 0x20;
	out[n++] = (unsigned char)off;
	out[n++] = (unsigned char)(off >> 8);
	out[n++] = (unsigned char)len;
	out[n++] = (unsigned char)(len >> 8);
	if (t) {
		out[n++] = (unsigned char)t;
		memcpy(out + n, text, t);
		n += t;
	}
	return n;
}

static void read_expect(gw_odb *odb, const gw_oid *oid, gw_object_t want_type, const char *want)
{
	unsigned char *data;
	size_t len;
	gw_object_t type;
	uint64_t size;
	int rc = gw_odb_read(odb, oid, &type, &data, &len);
	if (rc < 0)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
	assert_int_equal(type, want_type);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(data, want, len);
	free(data);
	assert_int_equal(gw_odb_read_header(odb, oid, &type, &size), 0);
	assert_int_equal(type, want_type);
	assert_int_equal(size, strlen(want));
}

/* REF_DELTA and OFS_DELTA chains mixed, in both directions of a pack; every offset in the 64-bit table. */
static void check_handmade(size_t hl, int large)
{
	char repo[256], text[2][64];
	const char *base = "The quick brown fox jumps over the lazy dog, again and again.";
	unsigned char d1[128], d2[128], d3[128];
	hm_entry es[4];
	gw_odb_options o = {.hash_len = hl};
	gw_odb *odb;
	size_t i;
	snprintf(repo, sizeof(repo), "%s/hand%zu%d.git", tmp, hl, large);
	assert_int_equal(tu_sh("rm -rf %s && git init -q --bare --object-format=%s %s", repo, hl == 32 ? "sha256" : "sha1",
			       repo),
			 0);
	memset(es, 0, sizeof(es));
	/* 0: REF_DELTA on 2 (which comes later in the pack); 1: OFS_DELTA on 0; 2: the blob; 3: REF_DELTA on 1. */
	snprintf(text[0], sizeof(text[0]), "%.44s and a REF", base);
	snprintf(text[1], sizeof(text[1]), "%.20s then OFS", text[0]);
	es[2].type = GW_OBJ_BLOB;
	es[2].data = (const unsigned char *)base;
	es[2].len = strlen(base);
	object_id(&es[2].id, hl, GW_OBJ_BLOB, es[2].data, es[2].len);
	es[0].type = GW_OBJ_REF_DELTA;
	es[0].ref = es[2].id;
	es[0].len = make_delta(d1, strlen(base), strlen(text[0]), 0, 44, " and a REF");
	es[0].data = d1;
	object_id(&es[0].id, hl, GW_OBJ_BLOB, (const unsigned char *)text[0], strlen(text[0]));
	es[1].type = GW_OBJ_OFS_DELTA;
	es[1].base = 0;
	es[1].len = make_delta(d2, strlen(text[0]), strlen(text[1]), 0, 20, " then OFS");
	es[1].data = d2;
	object_id(&es[1].id, hl, GW_OBJ_BLOB, (const unsigned char *)text[1], strlen(text[1]));
	es[3].type = GW_OBJ_REF_DELTA;
	es[3].ref = es[1].id;
	es[3].len = make_delta(d3, strlen(text[1]), 5, 4, 5, "");
	es[3].data = d3;
	object_id(&es[3].id, hl, GW_OBJ_BLOB, (const unsigned char *)text[1] + 4, 5);
	write_pack(repo, hl, es, 4, large);
	/* git agrees it is a sound pack. */
	assert_int_equal(tu_sh("git --git-dir=%s verify-pack %s/objects/pack/pack-test.idx", repo, repo), 0);
	for (i = 0; i < 2; i++) { /* cold, then warm cache */
		assert_int_equal(gw_odb_open(&odb, repo, &o), 0);
		read_expect(odb, &es[3].id, GW_OBJECT_BLOB, "quick");
		read_expect(odb, &es[1].id, GW_OBJECT_BLOB, text[1]);
		read_expect(odb, &es[0].id, GW_OBJECT_BLOB, text[0]);
		read_expect(odb, &es[2].id, GW_OBJECT_BLOB, base);
		read_expect(odb, &es[3].id, GW_OBJECT_BLOB, "quick");
		gw_odb_free(odb);
	}
	/* A tiny cache: every base evicted at once. */
	o.cache_bytes = 1;
	assert_int_equal(gw_odb_open(&odb, repo, &o), 0);
	read_expect(odb, &es[3].id, GW_OBJECT_BLOB, "quick");
	read_expect(odb, &es[0].id, GW_OBJECT_BLOB, text[0]);
	gw_odb_free(odb);
}

static void test_handmade_sha1(void **state)
{
	(void)state;
	check_handmade(20, 0);
	check_handmade(20, 1);
}

static void test_handmade_sha256(void **state)
{
	(void)state;
	check_handmade(32, 0);
	check_handmade(32, 1);
}

/* ---- damage ---- */

/* A fresh SHA-1 repository whose one pack holds es (ids as given). */
static void damaged_setup(char *repo, size_t n, const char *name, hm_entry *es, size_t count)
{
	snprintf(repo, n, "%s/%s", tmp, name);
	assert_int_equal(tu_sh("rm -rf %s && git init -q --bare %s", repo, repo), 0);
	write_pack(repo, 20, es, count, 0);
}

static void expect_read_error(const char *repo, const gw_oid *oid, int code, const char *needle, const char *needle2)
{
	gw_odb *odb;
	unsigned char *data = (unsigned char *)"x";
	size_t len;
	gw_object_t type;
	gw_odb_options o = {.label = "dmg.git", .max_object_size = 1 << 20};
	assert_int_equal(gw_odb_open(&odb, repo, &o), 0);
	tu_assert_err(gw_odb_read(odb, oid, &type, &data, &len), code, needle);
	if (needle2)
		tu_assert_msg_has(needle2);
	assert_null(data);
	gw_odb_free(odb);
}

static void test_damaged_packs(void **state)
{
	char repo[256], path[512], hex[GW_HEX_MAX], msg[600];
	unsigned char delta[64], big[64];
	const char *blob = "hello, damaged world";
	hm_entry es[3];
	gw_odb *odb;
	gw_oid ghost;
	size_t len;
	unsigned char *buf;
	(void)state;

	/* A delta whose REF base is not in the pack. */
	memset(es, 0, sizeof(es));
	gw_oid_from_hex(&ghost, "1111111111111111111111111111111111111111", 20);
	es[0].type = GW_OBJ_REF_DELTA;
	es[0].ref = ghost;
	es[0].len = make_delta(delta, 5, 5, 0, 5, "");
	es[0].data = delta;
	gw_oid_from_hex(&es[0].id, "2222222222222222222222222222222222222222", 20);
	damaged_setup(repo, sizeof(repo), "dmg-ref.git", es, 1);
	snprintf(msg, sizeof(msg), "repository dmg.git: object 2222222222222222222222222222222222222222 (%s/objects/pack/pack-test.pack, offset 12): its delta base 1111111111111111111111111111111111111111 is not in the pack", repo);
	expect_read_error(repo, &es[0].id, GW_ECORRUPT, msg, NULL);
	/* REF_DELTAs based on each other: the chain is cut. */
	es[1] = es[0];
	gw_oid_from_hex(&es[1].id, "1111111111111111111111111111111111111111", 20);
	es[0].ref = es[1].id;
	es[1].ref = es[0].id;
	damaged_setup(repo, sizeof(repo), "dmg-loop.git", es, 2);
	expect_read_error(repo, &es[0].id, GW_ECORRUPT, "delta chain longer than 10000", "object 2222");
	{
		gw_object_t type;
		uint64_t size;
		assert_int_equal(gw_odb_open(&odb, repo, NULL), 0);
		tu_assert_err(gw_odb_read_header(odb, &es[1].id, &type, &size), GW_ECORRUPT, "delta chain longer than");
		gw_odb_free(odb);
	}
	/* Bad deltas on a sound base. */
	memset(es, 0, sizeof(es));
	es[0].type = GW_OBJ_BLOB;
	es[0].data = (const unsigned char *)blob;
	es[0].len = strlen(blob);
	object_id(&es[0].id, 20, GW_OBJ_BLOB, es[0].data, es[0].len);
	es[1].type = GW_OBJ_OFS_DELTA;
	es[1].base = 0;
	es[1].data = delta;
	gw_oid_from_hex(&es[1].id, "3333333333333333333333333333333333333333", 20);
	{
		struct {
			size_t base_len, result_len, off, len;
			const char *text, *why;
		} cases[] = {
			{20, 5, 0, 5, "", NULL},  /* sound (but its id is made up) */
			{19, 5, 0, 5, "", "delta is for a base of another size"},
			{20, 5, 16, 5, "", "copy instruction reads past the end of the base"},
			{20, 4, 0, 5, "", "delta writes more than its announced size"},
			{20, 9, 0, 5, "", "delta writes less than its announced size"},
			{20, 2000000, 0, 5, "", "delta result is larger than allowed"},
		};
		size_t k;
		for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			es[1].len = make_delta(delta, cases[k].base_len, cases[k].result_len, cases[k].off, cases[k].len,
					       cases[k].text);
			damaged_setup(repo, sizeof(repo), "dmg-delta.git", es, 2);
			if (!cases[k].why) {
				expect_read_error(repo, &es[1].id, GW_ECORRUPT, "its content does not match its id",
						  ", offset 42)");
				continue;
			}
			expect_read_error(repo, &es[1].id, GW_ECORRUPT, cases[k].why,
					  "object 3333333333333333333333333333333333333333");
		}
		/* Truncated instructions, a reserved one, an insert past the end. */
		memcpy(big, "\x14\x05\x91", 3); /* copy with offset byte and size byte missing */
		es[1].data = big;
		es[1].len = 3;
		damaged_setup(repo, sizeof(repo), "dmg-delta.git", es, 2);
		expect_read_error(repo, &es[1].id, GW_ECORRUPT, "truncated copy instruction", NULL);
		memcpy(big, "\x14\x05\x00", 3);
		damaged_setup(repo, sizeof(repo), "dmg-delta.git", es, 2);
		expect_read_error(repo, &es[1].id, GW_ECORRUPT, "reserved instruction 0", NULL);
		memcpy(big, "\x14\x05\x05xy", 5);
		es[1].len = 5;
		damaged_setup(repo, sizeof(repo), "dmg-delta.git", es, 2);
		expect_read_error(repo, &es[1].id, GW_ECORRUPT, "insert instruction runs past the end of the delta", NULL);
		memcpy(big, "\x94", 1);
		es[1].len = 1;
		damaged_setup(repo, sizeof(repo), "dmg-delta.git", es, 2);
		expect_read_error(repo, &es[1].id, GW_ECORRUPT, "truncated delta header", NULL);
	}
	/* The blob's zlib data damaged; truncated into the trailer; its header lying about its size. */
	damaged_setup(repo, sizeof(repo), "dmg-zlib.git", es, 1);
	snprintf(path, sizeof(path), "%s/objects/pack/pack-test.pack", repo);
	buf = tu_read_file(path, &len);
	buf[12 + 2] ^= 0xff; /* the zlib header, after the entry's two header bytes */
	tu_write_file(path, buf, len);
	snprintf(msg, sizeof(msg), "repository dmg.git: object %s (%s, offset 12): bad zlib data", gw_oid_to_hex(hex, &es[0].id),
		 path);
	expect_read_error(repo, &es[0].id, GW_ECORRUPT, msg, NULL);
	free(buf);
	/* An object whose size needs more than the pack holds. */
	{
		unsigned char hdr[16];
		size_t hl;
		damaged_setup(repo, sizeof(repo), "dmg-size.git", es, 1);
		snprintf(path, sizeof(path), "%s/objects/pack/pack-test.pack", repo);
		buf = tu_read_file(path, &len);
		hl = gw_pack_encode_header(hdr, GW_OBJ_BLOB, 21); /* one more byte than the data */
		assert_int_equal(hl, gw_pack_encode_header(hdr, GW_OBJ_BLOB, 21));
		memcpy(buf + 12, hdr, hl);
		tu_write_file(path, buf, len);
		free(buf);
		expect_read_error(repo, &es[0].id, GW_ECORRUPT, "its data is shorter than its header says", "offset 12");
		buf = tu_read_file(path, &len);
		gw_pack_encode_header(hdr, GW_OBJ_BLOB, 19);
		memcpy(buf + 12, hdr, hl);
		tu_write_file(path, buf, len);
		free(buf);
		expect_read_error(repo, &es[0].id, GW_ECORRUPT, "its data is longer than its header says", NULL);
		buf = tu_read_file(path, &len);
		buf[12] = 0x50 | 0x04; /* type 5 */
		tu_write_file(path, buf, len);
		free(buf);
		expect_read_error(repo, &es[0].id, GW_ECORRUPT, "bad entry header", NULL);
		buf = tu_read_file(path, &len);
		memcpy(buf + 12, "\xbf\xff\xff\xff\xff\xff\xff\x7f", 8); /* a blob of 2^53 bytes */
		tu_write_file(path, buf, len);
		free(buf);
		expect_read_error(repo, &es[0].id, GW_ECORRUPT, "its size is more than its data can hold", NULL);
	}
	/* The pack no longer matches its index: a pack cut short, another object count. */
	damaged_setup(repo, sizeof(repo), "dmg-match.git", es, 1);
	snprintf(path, sizeof(path), "%s/objects/pack/pack-test.pack", repo);
	buf = tu_read_file(path, &len);
	tu_write_file(path, buf, len - 5);
	tu_assert_err(gw_odb_open(&odb, repo, NULL), GW_ECORRUPT, "does not match its index");
	tu_assert_msg_has("pack-test.idx (checksum)");
	tu_write_file(path, buf, 20);
	tu_assert_err(gw_odb_open(&odb, repo, NULL), GW_ECORRUPT, "is too small to be a pack (20 bytes)");
	buf[11] = 2;
	tu_write_file(path, buf, len);
	tu_assert_err(gw_odb_open(&odb, repo, NULL), GW_ECORRUPT, "(object count)");
	buf[11] = 1;
	buf[7] = 4;
	tu_write_file(path, buf, len);
	tu_assert_err(gw_odb_open(&odb, repo, NULL), GW_ECORRUPT, "is not a version 2 pack");
	free(buf);
	/* The index: cut short, an offset outside the pack, a bad large offset. */
	damaged_setup(repo, sizeof(repo), "dmg-idx.git", es, 1);
	snprintf(path, sizeof(path), "%s/objects/pack/pack-test.idx", repo);
	buf = tu_read_file(path, &len);
	tu_write_file(path, buf, len - 10);
	tu_assert_err(gw_odb_open(&odb, repo, NULL), GW_ECORRUPT, "pack-test.idx: 1 objects need");
	gw_put_be32(buf + 8 + 1024 + 20 + 4, 4000);
	tu_write_file(path, buf, len);
	snprintf(msg, sizeof(msg), "pack-test.idx gives object %s offset 4000, outside its pack",
		 gw_oid_to_hex(hex, &es[0].id));
	expect_read_error(repo, &es[0].id, GW_ECORRUPT, msg, NULL);
	gw_put_be32(buf + 8 + 1024 + 20 + 4, 0x80000000u);
	tu_write_file(path, buf, len);
	expect_read_error(repo, &es[0].id, GW_ECORRUPT, "pack-test.idx: large offset 0 out of range", "dmg.git");
	free(buf);
}

static void test_damaged_loose(void **state)
{
	char repo[256], path[512], hex[GW_HEX_MAX], msg[600];
	unsigned char z[256];
	gw_oid oid;
	size_t i;
	struct {
		const char *content; /* inflated */
		size_t len;
		const char *why;
	} cases[] = {
		{"blob 5\0hello", 12, NULL},
		{"blob 5\0hell", 11, "its data is shorter than its header says"},
		{"blob 5\0hello!", 13, "its data is longer than its header says"},
		{"blob5\0hello", 11, "bad loose object header"},
		{"blub 5\0hello", 12, "bad loose object header"},
		{"blob -5\0hello", 13, "bad loose object header"},
		{"blob 99999999999999999999999\0x", 31, "bad loose object header"},
		{"blob 5 hello", 12, "bad loose object header"},
		{"blob 5\0hellp", 12, "its content does not match its id"},
		{"blob 900\0hello", 14, "its size is more than allowed or its data can hold"},
	};
	(void)state;
	snprintf(repo, sizeof(repo), "%s/dmg-loose.git", tmp);
	assert_int_equal(tu_sh("rm -rf %s && git init -q --bare %s && mkdir %s/objects/b6", repo, repo, repo), 0);
	/* Every case stored under the id of "hello". */
	gw_oid_from_hex(&oid, "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0", 20);
	snprintf(path, sizeof(path), "%s/objects/b6/fc4c620b67d95f953a5c1c1230aaab5db5a1b0", repo);
	snprintf(msg, sizeof(msg), "repository dmg.git: object %s (%s): ", gw_oid_to_hex(hex, &oid), path);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gw_odb_options o = {.label = "dmg.git", .max_object_size = 100};
		size_t n = deflate_into(z, sizeof(z), (const unsigned char *)cases[i].content, cases[i].len);
		gw_odb *odb;
		unsigned char *data = NULL;
		size_t len;
		gw_object_t type;
		char full[700];
		tu_write_file(path, z, n);
		assert_int_equal(gw_odb_open(&odb, repo, &o), 0);
		if (!cases[i].why) {
			assert_int_equal(gw_odb_read(odb, &oid, &type, &data, &len), 0);
			assert_int_equal(len, 5);
			free(data);
		} else {
			snprintf(full, sizeof(full), "%s%s", msg, cases[i].why);
			tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ECORRUPT, full);
		}
		gw_odb_free(odb);
	}
	/* Not zlib, truncated zlib, garbage after the stream. */
	{
		gw_odb *odb;
		unsigned char *data = NULL;
		size_t len, n = deflate_into(z, sizeof(z), (const unsigned char *)"blob 5\0hello", 12);
		gw_object_t type;
		uint64_t size;
		assert_int_equal(gw_odb_open(&odb, repo, NULL), 0);
		tu_write_file(path, "not zlib at all", 15);
		tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ECORRUPT, "bad zlib data");
		tu_write_file(path, z, n - 6);
		tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ECORRUPT, "truncated zlib stream");
		assert_int_equal(gw_odb_read_header(odb, &oid, &type, &size), 0);
		assert_int_equal(size, 5);
		memcpy(z + n, "junk", 4);
		tu_write_file(path, z, n + 4);
		tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ECORRUPT, "garbage after its data");
		tu_write_file(path, "", 0);
		tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ECORRUPT, "truncated zlib stream");
		unlink(path);
		tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ENOTFOUND,
			      "object b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0 not found");
		assert_int_equal(gw_odb_exists(odb, &oid), 0);
		/* A directory where the file should be: an I/O error, named. */
		mkdir(path, 0700);
		tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_EIO, "Is a directory");
		rmdir(path);
		gw_odb_free(odb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oid_hex),
		cmocka_unit_test(test_loose_sha1),
		cmocka_unit_test(test_loose_sha256),
		cmocka_unit_test(test_packed_ofs_sha1),
		cmocka_unit_test(test_packed_ofs_sha256),
		cmocka_unit_test(test_packed_ref_sha1),
		cmocka_unit_test(test_packed_ref_sha256),
		cmocka_unit_test(test_mixed_sha1),
		cmocka_unit_test(test_mixed_sha256),
		cmocka_unit_test(test_live_sha1),
		cmocka_unit_test(test_live_sha256),
		cmocka_unit_test(test_large_offsets_sha1),
		cmocka_unit_test(test_large_offsets_sha256),
		cmocka_unit_test(test_write_objects_sha1),
		cmocka_unit_test(test_write_objects_sha256),
		cmocka_unit_test(test_alternates),
		cmocka_unit_test(test_object_format),
		cmocka_unit_test(test_parse_real),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_handmade_sha1),
		cmocka_unit_test(test_handmade_sha256),
		cmocka_unit_test(test_damaged_packs),
		cmocka_unit_test(test_damaged_loose),
	};
	return getenv("TU_FILTER") ? (cmocka_set_test_filter(getenv("TU_FILTER")),
				      cmocka_run_group_tests(tests, group_setup, group_teardown))
				   : cmocka_run_group_tests(tests, group_setup, group_teardown);
}
