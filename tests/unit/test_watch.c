/*
 * Tests for wal/watch.c with real inotify and real git: every test builds a
 * root under /tmp, changes it with git or the shell, pumps the watcher the
 * way an event loop would (poll on gw_watch_fd) and checks the events.
 * The overflow and watch-limit tests lower the inotify sysctls for a few
 * milliseconds and restore them on every path (skipped if not writable).
 */
#include "testutil.h"

#include "gitwal/repo.h"
#include "gitwal/watch.h"

#include <poll.h>
#include <sys/resource.h>
#include <time.h>

#define EMPTY_TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
#define SYSCTL_QUEUED "/proc/sys/fs/inotify/max_queued_events"
#define SYSCTL_WATCHES "/proc/sys/fs/inotify/max_user_watches"

typedef struct {
	int kind;
	char repo[512];
	uint32_t events;
	uint64_t first_ms, at_ms;
} ev_rec;

typedef struct {
	char root[256];
	char tmp[128]; /* holds root, the git HOME, clones */
	gw_watch *w;
	ev_rec *ev;
	size_t n;
} fixture;

/* Saved sysctl values (0: untouched), restored by teardown and at exit whatever happens. */
static long saved_queued, saved_watches;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static long sysctl_read(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int sysctl_write(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int ok;
	if (!f)
		return -1;
	ok = fprintf(f, "%ld\n", v) > 0;
	ok = (fclose(f) == 0) && ok;
	return ok && sysctl_read(path) == v ? 0 : -1;
}

static void sysctl_restore(void)
{
	if (saved_queued > 0 && sysctl_write(SYSCTL_QUEUED, saved_queued) == 0)
		saved_queued = 0;
	if (saved_watches > 0 && sysctl_write(SYSCTL_WATCHES, saved_watches) == 0)
		saved_watches = 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char home[200];
	assert_non_null(f);
	/* tmpfs when there is one: the watcher does not care, and the disk may be busy. */
	snprintf(f->tmp, sizeof(f->tmp), "%s/gitwal-watch-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->root, sizeof(f->root), "%s/root", f->tmp);
	snprintf(home, sizeof(home), "%s/home", f->tmp);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(home, 0755), 0);
	tu_git_env(home);
	setenv("GIT_TERMINAL_PROMPT", "0", 1);
	f->ev = calloc(8192, sizeof(ev_rec));
	assert_non_null(f->ev);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	sysctl_restore();
	gw_watch_free(f->w);
	tu_rmrf(f->tmp);
	free(f->ev);
	free(f);
	return 0;
}

static void start(fixture *f, unsigned debounce, unsigned max_delay)
{
	gw_watch_options o = GW_WATCH_OPTIONS_INIT;
	int rc;
	if (debounce)
		o.debounce_ms = debounce;
	if (max_delay)
		o.max_delay_ms = max_delay;
	rc = gw_watch_new(&f->w, f->root, &o);
	if (rc)
		print_error("gw_watch_new: %s\n", gw_error_message());
	assert_int_equal(rc, 0);
}

/*
 * The caller's event loop: poll the fd with the watcher's timeout, digest,
 * take what is due. Returns once nothing is pending and no inotify event
 * arrived for quiet_ms, or after max_ms.
 */
static void pump(fixture *f, int quiet_ms, int max_ms)
{
	uint64_t t0 = mono_ms(), last = t0;
	gw_watch_event e;
	f->n = 0;
	for (;;) {
		uint64_t t = mono_ms();
		int to = gw_watch_next_timeout_ms(f->w), wait, r;
		struct pollfd pfd = {gw_watch_fd(f->w), POLLIN, 0};
		if (t - t0 >= (uint64_t)max_ms)
			break;
		if (to < 0 && t - last >= (uint64_t)quiet_ms)
			break;
		wait = to >= 0 ? to : (int)((uint64_t)quiet_ms - (t - last));
		if ((uint64_t)wait > (uint64_t)max_ms - (t - t0))
			wait = (int)((uint64_t)max_ms - (t - t0));
		r = poll(&pfd, 1, wait);
		assert_true(r >= 0 || errno == EINTR);
		if (r > 0) {
			int n = gw_watch_process(f->w);
			if (n < 0)
				print_error("gw_watch_process: %s\n", gw_error_message());
			assert_true(n >= 0);
			if (n > 0)
				last = mono_ms();
		}
		while ((r = gw_watch_take(f->w, &e)) == 1) {
			ev_rec *x;
			assert_true(f->n < 8192);
			x = &f->ev[f->n++];
			x->kind = e.kind;
			snprintf(x->repo, sizeof(x->repo), "%s", e.repo ? e.repo : "");
			x->events = e.events;
			x->first_ms = e.first_ms;
			x->at_ms = mono_ms();
			if (getenv("TU_VERBOSE"))
				fprintf(stderr, "  event %s %s (%u raw)\n", gw_watch_kind_name(e.kind), x->repo,
					e.events);
		}
		assert_int_equal(r, 0);
	}
}

/* Shell commands run to completion before this: their events are queued already. */
static void pump_default(fixture *f)
{
	pump(f, 150, 6000);
}

static size_t count(const fixture *f, int kind, const char *repo)
{
	size_t i, c = 0;
	for (i = 0; i < f->n; i++)
		if (f->ev[i].kind == kind && (!repo || !strcmp(f->ev[i].repo, repo)))
			c++;
	return c;
}

static void dump(const fixture *f)
{
	size_t i;
	for (i = 0; i < f->n; i++)
		print_error("  got %s '%s' (%u raw)\n", gw_watch_kind_name(f->ev[i].kind), f->ev[i].repo,
			    f->ev[i].events);
}

/* Exactly these events, in any order. */
static void expect_only(const fixture *f, size_t want, ...)
{
	va_list ap;
	size_t i;
	int ok = f->n == want;
	va_start(ap, want);
	for (i = 0; i < want && ok; i++) {
		int kind = va_arg(ap, int);
		const char *repo = va_arg(ap, const char *);
		if (count(f, kind, repo) != 1)
			ok = 0;
	}
	va_end(ap);
	if (!ok) {
		print_error("expected %zu event(s), got %zu:\n", want, f->n);
		dump(f);
		fail();
	}
}

static void expect_none(const fixture *f)
{
	expect_only(f, 0);
}

/* git init --bare root/rel, with one commit object to point refs at. */
static void git_init(fixture *f, const char *rel)
{
	assert_int_equal(tu_sh("git init -q --bare -b main '%s/%s'", f->root, rel), 0);
}

static char *commit_in(fixture *f, const char *rel)
{
	static char sha[64];
	char *out = tu_sh_out("git -C '%s/%s' commit-tree " EMPTY_TREE " -m x", f->root, rel);
	assert_non_null(out);
	snprintf(sha, sizeof(sha), "%.40s", out);
	free(out);
	return sha;
}

/* A bare repository as gw_repo_is_bare sees it, without forking git (for scale). */
static void fake_repo(const char *path)
{
	char p[512];
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(p, sizeof(p), "%s/HEAD", path);
	tu_write_file(p, "ref: refs/heads/main\n", 21);
	snprintf(p, sizeof(p), "%s/objects", path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/refs", path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/refs/heads", path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/refs/tags", path);
	assert_int_equal(mkdir(p, 0755), 0);
}

static struct gw_watch_stats stats(const fixture *f)
{
	struct gw_watch_stats st;
	gw_watch_stats(f->w, &st);
	return st;
}

static void expect_repos_match_discover(const fixture *f)
{
	char **a, **b;
	size_t na, nb, i;
	int same;
	assert_int_equal(gw_watch_repos(f->w, &a, &na), 0);
	assert_int_equal(gw_repo_discover(f->root, &b, &nb), 0);
	same = na == nb;
	for (i = 0; same && i < na; i++)
		same = !strcmp(a[i], b[i]);
	if (!same) {
		print_error("watch knows %zu repositories, discover finds %zu:\n", na, nb);
		for (i = 0; i < na || i < nb; i++)
			print_error("  %-30s %s\n", i < na ? a[i] : "", i < nb ? b[i] : "");
	}
	gw_repo_list_free(a, na);
	gw_repo_list_free(b, nb);
	assert_true(same);
}

/* ---- tests ---- */

static void test_initial_scan(void **state)
{
	fixture *f = *state;
	struct gw_watch_stats st;
	git_init(f, "a.git");
	git_init(f, "g/b.git");
	git_init(f, "g/h/c.git");
	git_init(f, ".hidden/d.git");
	assert_int_equal(tu_sh("mkdir -p '%s/empty' && ln -s '%s/a.git' '%s/link.git'", f->root, f->root, f->root),
			 0);
	start(f, 0, 0);
	/* Symlinks are not followed (nor by gw_repo_discover): link.git is not watched. */
	{
		char **l;
		size_t n;
		assert_int_equal(gw_watch_repos(f->w, &l, &n), 0);
		assert_int_equal(n, 3);
		assert_string_equal(l[0], "a.git");
		assert_string_equal(l[1], "g/b.git");
		assert_string_equal(l[2], "g/h/c.git");
		gw_repo_list_free(l, n);
	}
	expect_repos_match_discover(f);
	st = stats(f);
	/* root, g, g/h, empty; each repository: itself, refs, refs/heads, refs/tags, info */
	assert_int_equal(st.watches, 4 + 3 * 5);
	assert_int_equal(st.repos, 3);
	assert_int_equal(st.dirs, 4);
	assert_int_equal(st.degraded, 0);
	assert_int_equal(gw_watch_next_timeout_ms(f->w), -1);
	pump(f, 150, 2000);
	expect_none(f);
	/* A rescan of an unchanged tree changes nothing. */
	assert_int_equal(gw_watch_rescan(f->w), 0);
	assert_int_equal(stats(f).watches, st.watches);
	pump(f, 150, 2000);
	expect_none(f);
}

static void test_new_errors(void **state)
{
	fixture *f = *state;
	gw_watch *w = NULL;
	gw_watch_options o = {500, 100};
	char path[300];
	tu_assert_err(gw_watch_new(&w, "/nonexistent/gitwal", NULL), GW_ENOTFOUND, "/nonexistent/gitwal");
	assert_null(w);
	tu_assert_err(gw_watch_new(&w, f->root, &o), GW_EINVALID, "debounce");
	snprintf(path, sizeof(path), "%s/file", f->tmp);
	tu_write_file(path, "x", 1);
	tu_assert_err(gw_watch_new(&w, path, NULL), GW_ENOTFOUND, "not a directory");
	assert_string_equal(gw_watch_kind_name(GW_WATCH_RESCAN_ALL), "rescan-all");
}

static void test_ref_update(void **state)
{
	fixture *f = *state;
	char *sha;
	uint64_t t0;
	git_init(f, "g/a.git");
	sha = commit_in(f, "g/a.git");
	start(f, 0, 0);
	t0 = mono_ms();
	assert_int_equal(tu_sh("git -C '%s/g/a.git' update-ref refs/heads/main %s", f->root, sha), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "g/a.git");
	/* After the debounce, not before. */
	assert_true(f->ev[0].at_ms >= t0 + GW_WATCH_DEBOUNCE_MS_DEFAULT);
	assert_true(f->ev[0].events >= 1);
	/* Deleting the ref is a change too. */
	assert_int_equal(tu_sh("git -C '%s/g/a.git' update-ref -d refs/heads/main", f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "g/a.git");
	assert_int_equal(stats(f).pending, 0);
}

static void test_burst_coalesced(void **state)
{
	fixture *f = *state;
	char *sha;
	git_init(f, "a.git");
	git_init(f, "quiet.git");
	sha = commit_in(f, "a.git");
	start(f, 0, 0);
	/* 100 separate ref transactions (lock, write, rename each) from one process. */
	assert_int_equal(tu_sh("cd '%s/a.git' && for i in $(seq 100); do printf 'start\\nupdate refs/heads/b%%s %s\\n"
			       "commit\\n' $i; done | git update-ref --stdin >/dev/null && test -f refs/heads/b100",
			       f->root, sha),
			 0);
	pump_default(f);
	if (f->n < 1 || f->n > 3 || count(f, GW_WATCH_CHANGED, "a.git") != f->n) {
		print_error("100 ref updates: expected 1-3 CHANGED a.git\n");
		dump(f);
		fail();
	}
	{
		size_t i, raw = 0;
		for (i = 0; i < f->n; i++)
			raw += f->ev[i].events;
		print_message("      100 ref updates -> %zu CHANGED (%zu raw inotify events)\n", f->n, raw);
		assert_true(raw >= 100);
	}
}

/* A continuous stream must not starve a repository: max_delay bounds the wait. */
static void test_max_delay(void **state)
{
	fixture *f = *state;
	char *sha, done[200];
	size_t i;
	git_init(f, "busy.git");
	sha = commit_in(f, "busy.git");
	start(f, 200, 500);
	snprintf(done, sizeof(done), "%s/stream-done", f->tmp);
	/* In the background: the loop below must keep reading while the stream runs. */
	assert_int_equal(tu_sh("cd '%s/busy.git' && (for i in $(seq 30); do git update-ref refs/heads/s$i %s; "
			       "sleep 0.05; done; touch '%s') >/dev/null 2>&1 &",
			       f->root, sha, done),
			 0);
	pump(f, 600, 8000);
	assert_int_equal(access(done, F_OK), 0);
	if (f->n < 2 || count(f, GW_WATCH_CHANGED, "busy.git") != f->n) {
		print_error("a 1.5 s stream with debounce 200 ms, max delay 500 ms: expected >= 2 CHANGED\n");
		dump(f);
		fail();
	}
	for (i = 0; i < f->n; i++) {
		uint64_t lag = f->ev[i].at_ms - f->ev[i].first_ms;
		if (lag > 500 + 250)
			print_error("event %zu came %llu ms after its first change\n", i, (unsigned long long)lag);
		assert_true(lag <= 500 + 250);
	}
	print_message("      1.5 s stream -> %zu CHANGED\n", f->n);
}

static void test_new_ref_directory(void **state)
{
	fixture *f = *state;
	size_t w0;
	char *sha;
	git_init(f, "a.git");
	sha = commit_in(f, "a.git");
	start(f, 0, 0);
	w0 = stats(f).watches;
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref refs/heads/feature/one %s", f->root, sha), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	assert_int_equal(stats(f).watches, w0 + 1); /* refs/heads/feature is watched now */
	/* A ref written directly (no lock) into the new directory. */
	assert_int_equal(tu_sh("echo %s > '%s/a.git/refs/heads/feature/two'", sha, f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	/* Several levels at once, and a new namespace under refs/. */
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref refs/heads/x/y/z %s && "
			       "git -C '%s/a.git' update-ref refs/notes/commits %s",
			       f->root, sha, f->root, sha),
			 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	assert_int_equal(stats(f).watches, w0 + 4);
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref refs/heads/x/y/z2 %s", f->root, sha), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	/* Deleting refs makes git prune the empty directories: watches go away. */
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref -d refs/heads/x/y/z && git -C '%s/a.git' update-ref -d "
			       "refs/heads/x/y/z2",
			       f->root, f->root),
			 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	assert_int_equal(stats(f).watches, w0 + 2);
}

static void test_head_retarget(void **state)
{
	fixture *f = *state;
	git_init(f, "a.git");
	start(f, 0, 0);
	assert_int_equal(tu_sh("git -C '%s/a.git' symbolic-ref HEAD refs/heads/x", f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
}

static void test_packed_refs(void **state)
{
	fixture *f = *state;
	char *sha;
	git_init(f, "a.git");
	sha = commit_in(f, "a.git");
	assert_int_equal(tu_sh("cd '%s/a.git' && git update-ref refs/heads/main %s && git update-ref refs/tags/v1 %s",
			       f->root, sha, sha),
			 0);
	start(f, 0, 0);
	assert_int_equal(tu_sh("git -C '%s/a.git' pack-refs --all", f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	/* Only packed-refs rewritten: deleting a packed ref. */
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref -d refs/tags/v1", f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
}

static void test_push(void **state)
{
	fixture *f = *state;
	git_init(f, "team/app.git");
	start(f, 0, 0);
	assert_int_equal(tu_sh("cd '%s' && git clone -q '%s/team/app.git' work 2>/dev/null && cd work && "
			       "echo hi > f && git add f && git commit -q -m one && git push -q origin HEAD:main "
			       "2>/dev/null",
			       f->tmp, f->root),
			 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "team/app.git");
	assert_int_equal(tu_sh("cd '%s/work' && echo more >> f && git commit -q -am two && git push -q origin "
			       "HEAD:main HEAD:refs/heads/topic/t1 2>/dev/null",
			       f->tmp),
			 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "team/app.git");
}

static void test_created(void **state)
{
	fixture *f = *state;
	char *sha;
	start(f, 0, 0);
	/* Nested new directories: the repository exists before its parents are watched. */
	git_init(f, "a/b/c.git");
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CREATED, "a/b/c.git");
	/* A watched directory becomes a repository. */
	assert_int_equal(tu_sh("mkdir -p '%s/later'", f->root), 0);
	pump_default(f);
	expect_none(f);
	git_init(f, "later");
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CREATED, "later");
	/* A whole tree moved in from outside the root. */
	assert_int_equal(tu_sh("mkdir -p '%s/out/x' && git init -q --bare '%s/out/x/y.git' && git init -q --bare "
			       "'%s/out/z.git' && mv '%s/out' '%s/moved'",
			       f->tmp, f->tmp, f->tmp, f->tmp, f->root),
			 0);
	pump_default(f);
	expect_only(f, 2, GW_WATCH_CREATED, "moved/x/y.git", GW_WATCH_CREATED, "moved/z.git");
	expect_repos_match_discover(f);
	/* The new repositories are watched. */
	sha = commit_in(f, "moved/x/y.git");
	assert_int_equal(tu_sh("git -C '%s/moved/x/y.git' update-ref refs/heads/main %s", f->root, sha), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "moved/x/y.git");
}

/*
 * Symlinks to the root inside the root (two: a walk that followed them would
 * never end), to a repository and to a directory of repositories: not
 * followed, at start-up, when created later, or by a rescan. Each repository
 * is watched once, under its real path, as gw_repo_discover lists it.
 */
static void test_symlinks(void **state)
{
	fixture *f = *state;
	struct gw_watch_stats st;
	char *sha;
	git_init(f, "a.git");
	git_init(f, "g/b.git");
	assert_int_equal(tu_sh("cd '%s' && ln -s '%s' loop1 && ln -s .. g/loop2 && ln -s a.git alias.git", f->root,
			       f->root),
			 0);
	start(f, 0, 0);
	expect_repos_match_discover(f);
	st = stats(f);
	assert_int_equal(st.repos, 2);
	assert_int_equal(st.watches, 2 + 2 * 5); /* root, g; each repository: itself, refs, heads, tags, info */
	/* More symlinks while watching: no event, no watch. */
	assert_int_equal(tu_sh("cd '%s' && ln -s . loop3 && ln -s g grp && ln -s g/b.git g/alias2.git", f->root), 0);
	pump_default(f);
	expect_none(f);
	assert_int_equal(stats(f).watches, st.watches);
	assert_int_equal(gw_watch_rescan(f->w), 0);
	pump_default(f);
	expect_none(f);
	assert_int_equal(stats(f).watches, st.watches);
	expect_repos_match_discover(f);
	/* A change is reported once, under the real path. */
	sha = commit_in(f, "a.git");
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref refs/heads/main %s", f->root, sha), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
}

/* A directory holding a repository becomes one itself: the inner one is no longer discovered. */
static void test_dir_becomes_repo(void **state)
{
	fixture *f = *state;
	git_init(f, "x/inner.git");
	start(f, 0, 0);
	git_init(f, "x");
	pump_default(f);
	expect_only(f, 2, GW_WATCH_CREATED, "x", GW_WATCH_DELETED, "x/inner.git");
	expect_repos_match_discover(f);
}

static void test_deleted(void **state)
{
	fixture *f = *state;
	git_init(f, "a.git");
	git_init(f, "g/b.git");
	git_init(f, "g/sub/c.git");
	start(f, 0, 0);
	assert_int_equal(tu_sh("rm -rf '%s/a.git'", f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_DELETED, "a.git");
	assert_int_equal(tu_sh("rm -rf '%s/g'", f->root), 0);
	pump_default(f);
	expect_only(f, 2, GW_WATCH_DELETED, "g/b.git", GW_WATCH_DELETED, "g/sub/c.git");
	assert_int_equal(stats(f).watches, 1);
	assert_int_equal(stats(f).repos, 0);
}

static void test_moved(void **state)
{
	fixture *f = *state;
	char *sha;
	git_init(f, "a.git");
	git_init(f, "g/b.git");
	git_init(f, "g/c.git");
	sha = commit_in(f, "a.git");
	start(f, 0, 0);
	assert_int_equal(tu_sh("mv '%s/a.git' '%s/g/renamed.git'", f->root, f->root), 0);
	pump_default(f);
	expect_only(f, 2, GW_WATCH_DELETED, "a.git", GW_WATCH_CREATED, "g/renamed.git");
	assert_int_equal(tu_sh("git -C '%s/g/renamed.git' update-ref refs/heads/main %s", f->root, sha), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "g/renamed.git");
	/* A group renamed: every repository in it moves. */
	assert_int_equal(tu_sh("mv '%s/g' '%s/g2'", f->root, f->root), 0);
	pump_default(f);
	expect_only(f, 6, GW_WATCH_DELETED, "g/b.git", GW_WATCH_DELETED, "g/c.git", GW_WATCH_DELETED,
		    "g/renamed.git", GW_WATCH_CREATED, "g2/b.git", GW_WATCH_CREATED, "g2/c.git", GW_WATCH_CREATED,
		    "g2/renamed.git");
	/* Moved out of the root. */
	assert_int_equal(tu_sh("mv '%s/g2/b.git' '%s/gone.git'", f->root, f->tmp), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_DELETED, "g2/b.git");
	expect_repos_match_discover(f);
	assert_int_equal(stats(f).watches, 1 + 1 + 2 * 5);
}

/* Create and delete the same paths again and again: no stale watch descriptor may survive. */
static void test_recreate_cycles(void **state)
{
	fixture *f = *state;
	int i;
	start(f, 0, 0);
	for (i = 0; i < 3; i++) {
		git_init(f, "r.git");
		pump_default(f);
		expect_only(f, 1, GW_WATCH_CREATED, "r.git");
		assert_int_equal(stats(f).watches, 6);
		assert_int_equal(tu_sh("mv '%s/r.git' '%s/s.git' && rm -rf '%s/s.git'", f->root, f->root, f->root), 0);
		pump_default(f);
		/* Both may coalesce into one window: s.git created and deleted is reported DELETED. */
		assert_int_equal(count(f, GW_WATCH_DELETED, "r.git"), 1);
		assert_true(count(f, GW_WATCH_CREATED, "s.git") == 0);
		assert_int_equal(stats(f).watches, 1);
	}
	/* Deleted and recreated within one debounce window: DELETED then CREATED. */
	git_init(f, "r.git");
	pump_default(f);
	assert_int_equal(tu_sh("rm -rf '%s/r.git' && git init -q --bare '%s/r.git'", f->root, f->root), 0);
	pump_default(f);
	expect_only(f, 2, GW_WATCH_DELETED, "r.git", GW_WATCH_CREATED, "r.git");
	assert_int_equal(f->ev[0].kind, GW_WATCH_DELETED);
	assert_int_equal(stats(f).watches, 6);
}

static void test_lock_files_ignored(void **state)
{
	fixture *f = *state;
	git_init(f, "a.git");
	start(f, 0, 0);
	assert_int_equal(tu_sh("cd '%s/a.git' && echo x > refs/heads/x.lock && rm refs/heads/x.lock && "
			       "echo x > packed-refs.lock && rm packed-refs.lock && echo x > HEAD.lock && "
			       "mv HEAD.lock HEAD.lock2 && rm HEAD.lock2 && mkdir refs/heads/d.lock && rmdir "
			       "refs/heads/d.lock",
			       f->root),
			 0);
	pump_default(f);
	/* HEAD.lock2 is an unrelated name in the repository directory: ignored too. */
	expect_none(f);
}

static void test_objects_ignored(void **state)
{
	fixture *f = *state;
	git_init(f, "a.git");
	start(f, 0, 0);
	assert_int_equal(tu_sh("cd '%s/a.git' && for i in 1 2 3 4 5; do echo blob$i | git hash-object -w --stdin "
			       ">/dev/null; done && git commit-tree " EMPTY_TREE " -m x >/dev/null && "
			       "echo x > objects/info/alternates && echo x > FETCH_HEAD && mkdir hooks/x && "
			       "echo x > info/exclude",
			       f->root),
			 0);
	pump_default(f);
	expect_none(f);
	assert_int_equal(stats(f).watches, 6);
}

/*
 * The repository's own files (DESIGN.md 4.5): config, description,
 * info/attributes and everything below custom_hooks/ (new subdirectories,
 * modes, links, removals) are each one CHANGED; links are not followed.
 */
static void test_repo_files(void **state)
{
	fixture *f = *state;
	static const char *const steps[] = {
		"git config gc.auto 0",
		"echo d > description",
		"echo '* text' > info/attributes",
		"chmod 600 info/attributes",
		"mkdir custom_hooks",
		"mkdir -p custom_hooks/pre-receive.d/deep",
		"printf '#!/bin/sh\\n' > custom_hooks/pre-receive.d/deep/check",
		"chmod 755 custom_hooks/pre-receive.d/deep/check",
		"chmod 700 custom_hooks/pre-receive.d",
		"ln -s ../../objects custom_hooks/pre-receive.d/link",
		"mv custom_hooks/pre-receive.d/deep custom_hooks/moved",
		"rm custom_hooks/moved/check",
		"rm -r custom_hooks",
		"rm info/attributes",
	};
	size_t i;
	git_init(f, "a.git");
	start(f, 0, 0);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(tu_sh("cd '%s/a.git' && %s", f->root, steps[i]), 0);
		pump_default(f);
		if (count(f, GW_WATCH_CHANGED, "a.git") != 1)
			print_error("step '%s'\n", steps[i]);
		expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	}
	/* The root; the repository, refs, heads, tags, info: custom_hooks/ and below it are watched no more. */
	assert_int_equal(stats(f).watches, 6);
	/* A directory linked in is not followed: a change in its target is no event. */
	assert_int_equal(tu_sh("mkdir -p '%s/elsewhere' '%s/a.git/custom_hooks' && ln -s '%s/elsewhere' "
			       "'%s/a.git/custom_hooks/outside'",
			       f->tmp, f->root, f->tmp, f->root),
			 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
	assert_int_equal(tu_sh("echo x > '%s/elsewhere/hook'", f->tmp), 0);
	pump_default(f);
	expect_none(f);
	assert_int_equal(stats(f).watches, 7); /* custom_hooks/ itself, not the link's target */
}

static void test_overflow(void **state)
{
	fixture *f = *state;
	long cur = sysctl_read(SYSCTL_QUEUED);
	int rc;
	char *sha;
	size_t i;

	git_init(f, "a.git");
	sha = commit_in(f, "a.git");
	if (cur <= 0 || sysctl_write(SYSCTL_QUEUED, cur) < 0) {
		print_message("      skipped: cannot write %s\n", SYSCTL_QUEUED);
		skip();
	}
	/* The queue limit is read once per inotify instance: lower it only around gw_watch_new. */
	saved_queued = cur;
	rc = sysctl_write(SYSCTL_QUEUED, 16);
	if (rc == 0)
		rc = gw_watch_new(&f->w, f->root, NULL);
	sysctl_restore();
	assert_int_equal(saved_queued, 0);
	assert_int_equal(sysctl_read(SYSCTL_QUEUED), cur);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);

	/* Many events before we read any, and a repository created meanwhile. */
	assert_int_equal(tu_sh("cd '%s/a.git' && for i in $(seq 40); do git update-ref refs/heads/b$i %s; done && "
			       "git init -q --bare '%s/late.git'",
			       f->root, sha, f->root),
			 0);
	pump_default(f);
	assert_true(stats(f).overflows >= 1);
	assert_int_equal(f->ev[0].kind, GW_WATCH_RESCAN_ALL);
	assert_null(f->ev[0].repo[0] ? f->ev[0].repo : NULL);
	for (i = 1; i < f->n; i++)
		assert_int_not_equal(f->ev[i].kind, GW_WATCH_DELETED);
	/* The resync after the overflow picked up what the lost events hid. */
	expect_repos_match_discover(f);
	assert_int_equal(stats(f).watches, 1 + 2 * 5);
	assert_int_equal(tu_sh("git -C '%s/a.git' update-ref -d refs/heads/b1", f->root), 0);
	pump_default(f);
	expect_only(f, 1, GW_WATCH_CHANGED, "a.git");
}

static void test_watch_limit(void **state)
{
	fixture *f = *state;
	long cur = sysctl_read(SYSCTL_WATCHES);
	struct gw_watch_stats st;
	gw_watch *w2 = NULL;
	int n = 0, rc2 = 0, sh = -1, ok;
	char msg[1024] = "", *sha;

	git_init(f, "a.git");
	start(f, 0, 0);
	assert_int_equal(gw_watch_last_failure(f->w), 0);
	if (cur <= 0 || sysctl_write(SYSCTL_WATCHES, cur) < 0) {
		print_message("      skipped: cannot write %s\n", SYSCTL_WATCHES);
		skip();
	}
	/*
	 * Below what this user already holds, every new watch fails with ENOSPC.
	 * Keep the window short and assert nothing until the limit is back.
	 */
	saved_watches = cur;
	ok = sysctl_write(SYSCTL_WATCHES, 1) == 0;
	if (ok) {
		sh = tu_sh("git init -q --bare '%s/new.git' && mkdir -p '%s/dir/sub'", f->root, f->root);
		n = gw_watch_process(f->w);
		rc2 = gw_watch_new(&w2, f->root, NULL);
		snprintf(msg, sizeof(msg), "%s", gw_error_message());
	}
	sysctl_restore();
	assert_int_equal(saved_watches, 0);
	assert_int_equal(sysctl_read(SYSCTL_WATCHES), cur);
	assert_true(ok);
	assert_int_equal(sh, 0);
	assert_true(n > 0);
	/* The root itself cannot be watched: that is an error, with the reason. */
	assert_int_equal(rc2, GW_EIO);
	assert_null(w2);
	if (!strstr(msg, "max_user_watches"))
		print_error("message: %s\n", msg);
	assert_non_null(strstr(msg, "max_user_watches"));

	pump_default(f);
	expect_only(f, 3, GW_WATCH_CREATED, "new.git", GW_WATCH_RESCAN, "new.git", GW_WATCH_RESCAN, "dir");
	st = stats(f);
	assert_int_equal(st.degraded, 2);
	assert_true(st.failures >= 2);
	/* What the service's event=watch_degraded line names (the sysctl to raise). */
	assert_int_equal(gw_watch_last_failure(f->w), ENOSPC);
	assert_int_equal(st.repos, 2);
	assert_int_equal(st.watches, 1 + 5);

	/* With the limit back, a rescan attaches what failed, quietly. */
	assert_int_equal(gw_watch_rescan(f->w), 0);
	st = stats(f);
	assert_int_equal(st.degraded, 0);
	assert_int_equal(st.watches, 1 + 5 + 5 + 2);
	pump_default(f);
	expect_none(f);
	sha = commit_in(f, "new.git");
	assert_int_equal(tu_sh("git -C '%s/new.git' update-ref refs/heads/main %s && mkdir '%s/dir/sub/r.git' && "
			       "git init -q --bare '%s/dir/sub/r.git'",
			       f->root, sha, f->root, f->root),
			 0);
	pump_default(f);
	expect_only(f, 2, GW_WATCH_CHANGED, "new.git", GW_WATCH_CREATED, "dir/sub/r.git");
}

static void test_scale(void **state)
{
	fixture *f = *state;
	const char *env = getenv("GW_WATCH_SCALE");
	int repos = env ? atoi(env) : 2000, groups = repos / 100 > 0 ? repos / 100 : 1, i;
	long page = sysconf(_SC_PAGESIZE), rss0, rss1;
	struct rusage ru0, ru1;
	struct gw_watch_stats st;
	struct pollfd pfd;
	uint64_t t0, t1;
	double cpu_ms, rss_mib;
	FILE *statm;
	char path[512];

	for (i = 0; i < groups; i++) {
		snprintf(path, sizeof(path), "%s/g%03d", f->root, i);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	for (i = 0; i < repos; i++) {
		snprintf(path, sizeof(path), "%s/g%03d/r%05d.git", f->root, i % groups, i);
		fake_repo(path);
	}
	statm = fopen("/proc/self/statm", "r");
	assert_non_null(statm);
	assert_int_equal(fscanf(statm, "%*s %ld", &rss0), 1);
	fclose(statm);
	t0 = mono_ms();
	start(f, 0, 0);
	t1 = mono_ms();
	statm = fopen("/proc/self/statm", "r");
	assert_non_null(statm);
	assert_int_equal(fscanf(statm, "%*s %ld", &rss1), 1);
	fclose(statm);
	st = stats(f);
	assert_int_equal(st.repos, (size_t)repos);
	assert_int_equal(st.watches, (size_t)(1 + groups + 4 * repos));
	assert_int_equal(st.degraded, 0);

	/* An idle second: the process sleeps in poll, no CPU. */
	assert_int_equal(getrusage(RUSAGE_SELF, &ru0), 0);
	pfd.fd = gw_watch_fd(f->w);
	pfd.events = POLLIN;
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 1000), 0);
	assert_int_equal(gw_watch_process(f->w), 0);
	assert_int_equal(getrusage(RUSAGE_SELF, &ru1), 0);
	cpu_ms = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) *
			 1000.0 +
		 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
			 1000.0;
	rss_mib = (double)(rss1 - rss0) * (double)page / (1024.0 * 1024.0);
	print_message("      %d repositories: %zu watches, set up in %llu ms, RSS +%.1f MiB (%.0f bytes/watch), "
		      "idle second %.2f ms CPU\n",
		      repos, st.watches, (unsigned long long)(t1 - t0), rss_mib,
		      (double)(rss1 - rss0) * (double)page / (double)st.watches, cpu_ms);
	/*
	 * About 0.5 KiB per watch in a plain build; AddressSanitizer's redzones
	 * and quarantine (freed readdir buffers are kept) inflate it 20-fold.
	 */
#if defined(__SANITIZE_ADDRESS__)
	assert_true(rss_mib < 16.0 * 1024.0 * (double)st.watches / (1024.0 * 1024.0) + 32.0);
#else
	assert_true(rss_mib < 2.0 * 1024.0 * (double)st.watches / (1024.0 * 1024.0) + 8.0);
#endif
	assert_true(cpu_ms < 20.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ref_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_coalesced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_ref_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_retarget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_becomes_repo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recreate_cycles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_files_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_objects_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale, setup, teardown),
	};
	atexit(sysctl_restore);
	return tu_run_tests(tests);
}
