/*
 * The s3:// driver through a failing network: tests/faultproxy.py sits
 * between the driver and the test radosgw and refuses connections, resets
 * them mid-body, drops answers, answers 500/503, delays and stalls, one kind
 * at a time. Every write, multipart upload and read must still succeed,
 * quickly (the time limits), without a key ever getting a second version (a
 * lost answer is looked up, never sent again blindly); a different object
 * found under the key is GW_EEXISTS; the store's health tells a stall
 * within seconds. Needs GITWAL_TEST_S3_ENDPOINT (exit 77 otherwise).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gitwal/error.h"
#include "gitwal/time.h"
#include "gitwal/store.h"
#include "store/s3.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Short limits, so that a stall costs a test about a second. */
#define LIMITS "&connect_timeout=1s&stall_timeout=1s&first_byte_timeout=1s&deadline=30s"

static const char *endpoint;
static char proxy_dir[256];
static char proxy_endpoint[64];
static pid_t proxy_pid;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

/* Switch the proxy's rules (atomically: it reads the file when it changes). */
static void proxy_rules(const char *json)
{
	char tmp[300], path[300];
	FILE *f;
	snprintf(tmp, sizeof(tmp), "%s/rules.tmp", proxy_dir);
	snprintf(path, sizeof(path), "%s/rules.json", proxy_dir);
	assert_non_null(f = fopen(tmp, "w"));
	fputs(json, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

/* Lines of the proxy's log containing both a and b (b may be NULL). */
static int proxy_count(const char *a, const char *b)
{
	char path[300], *log, *line, *save = NULL;
	int n = 0;
	snprintf(path, sizeof(path), "%s/log", proxy_dir);
	if (!(log = slurp(path)))
		return 0;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, a) && (!b || strstr(line, b));
	free(log);
	return n;
}

/* The number (from 1) of the proxy's first log line containing a and b; 0 when none. */
static int proxy_line(const char *a, const char *b)
{
	char path[300], *log, *line, *save = NULL;
	int n = 0, found = 0;
	snprintf(path, sizeof(path), "%s/log", proxy_dir);
	if (!(log = slurp(path)))
		return 0;
	for (line = strtok_r(log, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		n++;
		if (strstr(line, a) && (!b || strstr(line, b)))
			found = n;
	}
	free(log);
	return found;
}

/* Wait (up to 30 s) until the proxy logged n lines with a and b. */
static void proxy_wait(const char *a, const char *b, int n)
{
	double until = now_s() + 30;
	while (proxy_count(a, b) < n) {
		if (now_s() > until)
			fail_msg("the proxy did not log %d line(s) with '%s' and '%s'", n, a, b ? b : "");
		nap_ms(20);
	}
}

static int group_setup(void **state)
{
	char path[300], port[32], upstream[128], script[512];
	const char *host;
	double until;
	(void)state;
	snprintf(proxy_dir, sizeof(proxy_dir), "%s/gitwal-faultproxy.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(proxy_dir))
		return -1;
	host = strstr(endpoint, "://") ? strstr(endpoint, "://") + 3 : endpoint;
	snprintf(upstream, sizeof(upstream), "%s", host);
	snprintf(script, sizeof(script), "%s/tests/faultproxy.py", GITWAL_SOURCE_DIR);
	if ((proxy_pid = fork()) == 0) {
		execlp("python3", "python3", script, upstream, proxy_dir, (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/port", proxy_dir);
	for (until = now_s() + 30; access(path, F_OK) < 0; nap_ms(20))
		if (now_s() > until || waitpid(proxy_pid, NULL, WNOHANG) == proxy_pid) {
			fprintf(stderr, "the fault proxy did not start\n");
			return -1;
		}
	{
		char *p = slurp(path);
		snprintf(port, sizeof(port), "%s", p ? p : "0");
		free(p);
		port[strcspn(port, "\n")] = '\0';
	}
	snprintf(proxy_endpoint, sizeof(proxy_endpoint), "http://127.0.0.1:%s", port);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];
	(void)state;
	if (proxy_pid > 0) {
		kill(proxy_pid, SIGTERM);
		waitpid(proxy_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", proxy_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A fresh bucket made directly; stores on it through the proxy (*via, with
 * the short limits, then params, then via_params) and directly (*direct,
 * with params; optional).
 */
static void open_pair(int kind, const char *params, const char *via_params, gw_store **via, gw_store **direct)
{
	static unsigned counter;
	char bucket[64], url[1024];
	snprintf(bucket, sizeof(bucket), "gwf-%ld-%ld-%u", (long)getpid(), (long)time(NULL) % 100000, ++counter);
	snprintf(url, sizeof(url), "s3://%s/p?endpoint=%s&region=us-east-1&path_style=true", bucket, endpoint);
	if (gw_s3_bucket_create(url, kind) < 0)
		fail_msg("cannot create bucket %s: %s", bucket, gw_error_message());
	if (direct) {
		snprintf(url, sizeof(url), "s3://%s/p?endpoint=%s&region=us-east-1&path_style=true%s", bucket, endpoint,
			 params ? params : "");
		if (gw_store_open(direct, url) < 0)
			fail_msg("open %s: %s", url, gw_error_message());
	}
	snprintf(url, sizeof(url), "s3://%s/p?endpoint=%s&region=us-east-1&path_style=true%s%s%s", bucket,
		 proxy_endpoint, LIMITS, params ? params : "", via_params ? via_params : "");
	if (gw_store_open(via, url) < 0)
		fail_msg("open %s: %s", url, gw_error_message());
}

#include "store_pattern.h"


/* The key holds exactly one version (so no lost answer made a second). */
static void assert_one_version(gw_store *store, const char *key)
{
	gw_store_stat st;
	if (gw_store_stat_key(store, key, &st) < 0)
		fail_msg("stat %s: %s", key, gw_error_message());
	if (st.versions != 1)
		fail_msg("%s has %u versions", key, st.versions);
}

/* The faults, each as a rule for requests whose target matches `path`. */
typedef struct {
	const char *name;
	const char *rule; /* printf format: method, path */
	int times;        /* requests it takes (-1: the refusal takes connections, not requests) */
	int forwarded;    /* the request reaches the server (once) despite the fault */
} fault;

static const fault faults[] = {
	{"reset", "[{\"fault\":\"reset\",\"method\":\"%s\",\"path\":\"%s\",\"count\":1}]", 1, 0},
	{"drop", "[{\"fault\":\"drop\",\"method\":\"%s\",\"path\":\"%s\",\"count\":1}]", 1, 1},
	{"s500", "[{\"fault\":\"status\",\"status\":500,\"method\":\"%s\",\"path\":\"%s\",\"count\":2}]", 2, 0},
	{"s503", "[{\"fault\":\"status\",\"status\":503,\"method\":\"%s\",\"path\":\"%s\",\"count\":1}]", 1, 0},
	{"s500fwd", "[{\"fault\":\"status\",\"status\":500,\"forward\":true,\"method\":\"%s\",\"path\":\"%s\",\"count\":1}]", 1, 1},
	{"delay", "[{\"fault\":\"delay\",\"delay\":0.3,\"method\":\"%s\",\"path\":\"%s\",\"count\":1}]", 1, 0},
	{"stall", "[{\"fault\":\"stall\",\"method\":\"%s\",\"path\":\"%s\",\"count\":1}]", 1, 0},
	{"refuse", "[{\"fault\":\"refuse\",\"seconds\":0.5,\"method\":\"%s\",\"path\":\"%s\"}]", -1, 0},
};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static void set_fault(const fault *f, const char *method, const char *path)
{
	char rule[512];
	snprintf(rule, sizeof(rule), f->rule, method, path);
	proxy_rules(rule);
}

/* Small objects (one PUT) in a plain and an Object Lock bucket, under every fault. */
static void test_put_faults(void **state)
{
	static const int kinds[] = {GW_S3_BUCKET_PLAIN, GW_S3_BUCKET_LOCK};
	size_t k, i;
	(void)state;
	for (k = 0; k < 2; k++) {
		gw_store *store;
		open_pair(kinds[k], kinds[k] == GW_S3_BUCKET_LOCK ? "&lock=governance&retain=1h" : NULL, NULL, &store,
			  NULL);
		for (i = 0; i < NFAULTS; i++) {
			char key[64], path[80], body[64], *out;
			size_t len;
			double t0;
			snprintf(key, sizeof(key), "put/%zu-%zu-%s", k, i, faults[i].name);
			snprintf(path, sizeof(path), "/p/%s$", key);
			snprintf(body, sizeof(body), "object %zu of bucket kind %zu", i, k);
			set_fault(&faults[i], "PUT", path);
			t0 = now_s();
			if (gw_store_put(store, key, body, strlen(body)) < 0)
				fail_msg("put %s under fault %s: %s", key, faults[i].rule, gw_error_message());
			/* A stall costs first_byte_timeout, a refusal its second: seconds, not minutes. */
			if (now_s() - t0 > 10)
				fail_msg("put %s under fault %s took %.1f s", key, faults[i].name, now_s() - t0);
			proxy_rules("[]");
			if (faults[i].times >= 0)
				assert_int_equal(proxy_count("fault ", key), faults[i].times);
			/* A lost answer is looked up, not sent again. */
			if (faults[i].forwarded)
				assert_int_equal(proxy_count("req PUT", key), 1);
			assert_int_equal(gw_store_get(store, key, 1024, &out, &len), 0);
			assert_int_equal(len, strlen(body));
			assert_memory_equal(out, body, len);
			free(out);
			if (kinds[k] == GW_S3_BUCKET_LOCK)
				assert_one_version(store, key);
		}
		gw_store_free(store);
	}
}

/* A multipart upload: faults on a part, on the completion and on its start. */
static void test_multipart_faults(void **state)
{
	static const struct {
		const char *method, *path; /* path: a printf format of the key */
	} targets[] = {
		{"PUT", "/p/%s\\\\?partNumber=1&"},
		{"POST", "/p/%s\\\\?uploadId="},
	};
	gw_store *store;
	size_t t, i;
	int n = 0;
	(void)state;
	open_pair(GW_S3_BUCKET_LOCK, "&lock=governance&retain=1h", NULL, &store, NULL);
	for (t = 0; t < 2; t++)
		for (i = 0; i < NFAULTS; i++) {
			char key[64], path[128];
			/* The refusal and the delay are the same on every request: once is enough. */
			if ((!strcmp(faults[i].name, "refuse") || !strcmp(faults[i].name, "delay")) && t)
				continue;
			snprintf(key, sizeof(key), "mp/%zu-%zu-%s", t, i, faults[i].name);
			snprintf(path, sizeof(path), targets[t].path, key);
			set_fault(&faults[i], targets[t].method, path);
			if (write_pattern(store, key, (9u << 20) + 12345, GW_STORE_SIZE_UNKNOWN, 1u << 20, 100 + (uint64_t)n) < 0)
				fail_msg("multipart %s under fault %s on %s: %s", key, faults[i].rule, targets[t].method,
					 gw_error_message());
			proxy_rules("[]");
			if (faults[i].times >= 0)
				assert_int_equal(proxy_count("fault ", key), faults[i].times);
			/* A completion whose answer was lost is looked up (the multipart ETag), not sent again. */
			if (t == 1 && faults[i].forwarded)
				assert_int_equal(proxy_count("req POST", key) - 1, 1);
			check_pattern(store, key, (9u << 20) + 12345, 100 + (uint64_t)n);
			assert_one_version(store, key);
			n++;
		}
	/* The start of an upload lost (its id unknown): another is started, and the object is whole. */
	proxy_rules("[{\"fault\":\"status\",\"status\":503,\"method\":\"POST\",\"path\":\"mp/start\\\\?uploads=\",\"count\":1}]");
	assert_int_equal(write_pattern(store, "mp/start", 9u << 20, GW_STORE_SIZE_UNKNOWN, 1u << 20, 7), 0);
	proxy_rules("[]");
	check_pattern(store, "mp/start", 9u << 20, 7);
	gw_store_free(store);
}

/* Reads (HEAD, then ranged GETs of 4 MiB) under every fault. */
static void test_get_faults(void **state)
{
	static const char *methods[] = {"HEAD", "GET"};
	gw_store *store, *direct;
	size_t m, i;
	(void)state;
	open_pair(GW_S3_BUCKET_PLAIN, NULL, NULL, &store, &direct);
	assert_int_equal(write_pattern(direct, "get/object", (5u << 20) + 17, GW_STORE_SIZE_UNKNOWN, 1u << 20, 42), 0);
	for (m = 0; m < 2; m++)
		for (i = 0; i < NFAULTS; i++) {
			int before = proxy_count("fault ", methods[m]);
			set_fault(&faults[i], methods[m], "/p/get/object");
			check_pattern(store, "get/object", (5u << 20) + 17, 42);
			proxy_rules("[]");
			if (faults[i].times >= 0)
				assert_int_equal(proxy_count("fault ", methods[m]) - before, faults[i].times);
		}
	/* The answer stops halfway through its body: the stall limit applies while receiving too. */
	proxy_rules("[{\"fault\":\"stall\",\"forward\":true,\"method\":\"GET\",\"path\":\"/p/get/object\",\"count\":1}]");
	check_pattern(store, "get/object", (5u << 20) + 17, 42);
	proxy_rules("[]");
	gw_store_free(store);
	gw_store_free(direct);
}

/* Leftovers (incomplete uploads) under prefix. */
static int count_stray(const gw_store_stray *stray, void *payload)
{
	(void)stray;
	++*(int *)payload;
	return 0;
}

static int strays_under(gw_store *store, const char *prefix)
{
	int n = 0;
	assert_int_equal(gw_store_strays(store, prefix, count_stray, &n), 0);
	return n;
}

/*
 * Parallel parts (parallel=4) through faults: part 1 held back while the
 * others go up (they are sent at once, not one after another); a part
 * answered 500 once is sent again alone; connections reset and refused
 * mid-upload (the server gone for a moment) are retried part by part; a
 * part refused for good fails the object, whose upload is aborted with
 * nothing visible.
 */
static void test_parallel_parts(void **state)
{
	const uint64_t size = 4ull * S3_PART_SIZE + 5;
	gw_store *store, *direct;
	int rc;
	(void)state;
	open_pair(GW_S3_BUCKET_PLAIN, "&parallel=4", NULL, &store, &direct);

	proxy_rules("[{\"fault\":\"delay\",\"delay\":2,\"method\":\"PUT\",\"path\":\"/p/pp/a\\\\?partNumber=1&\",\"count\":1}]");
	assert_int_equal(write_pattern(store, "pp/a", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 31), 0);
	proxy_rules("[]");
	assert_true(proxy_line("req PUT", "pp/a?partNumber=2&") > 0);
	assert_true(proxy_line("req PUT", "pp/a?partNumber=2&") < proxy_line("req PUT", "pp/a?partNumber=1&"));
	check_pattern(direct, "pp/a", size, 31);

	proxy_rules("[{\"fault\":\"status\",\"status\":500,\"method\":\"PUT\",\"path\":\"/p/pp/b\\\\?partNumber=3&\",\"count\":1}]");
	assert_int_equal(write_pattern(store, "pp/b", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 32), 0);
	proxy_rules("[]");
	assert_int_equal(proxy_count("fault status", "pp/b?partNumber=3&"), 1);
	assert_int_equal(proxy_count("req PUT", "pp/b?partNumber=3&"), 1);
	assert_int_equal(proxy_count("req PUT", "pp/b?partNumber=2&"), 1);
	check_pattern(direct, "pp/b", size, 32);

	/* The server goes away for a second when part 3 comes: every connection in flight is reset. */
	proxy_rules("[{\"fault\":\"refuse\",\"seconds\":1,\"method\":\"PUT\",\"path\":\"/p/pp/c\\\\?partNumber=3&\"}]");
	assert_int_equal(write_pattern(store, "pp/c", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 33), 0);
	proxy_rules("[]");
	proxy_wait("listening again", NULL, 1);
	assert_true(proxy_count("fault refuse", "pp/c?partNumber=3&") >= 1);
	check_pattern(direct, "pp/c", size, 33);
	assert_int_equal(gw_store_remove(direct, "pp/a"), 0);
	assert_int_equal(gw_store_remove(direct, "pp/b"), 0);
	assert_int_equal(gw_store_remove(direct, "pp/c"), 0);

	/* Part 2 refused every time: the object fails, named, and nothing of it stays. */
	proxy_rules("[{\"fault\":\"status\",\"status\":400,\"method\":\"PUT\",\"path\":\"/p/pp/d\\\\?partNumber=2&\"}]");
	rc = write_pattern(store, "pp/d", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 34);
	proxy_rules("[]");
	assert_int_equal(rc, GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "key pp/d"));
	assert_non_null(strstr(gw_error_message(), "HTTP 400"));
	{
		gw_store_stat st;
		assert_int_equal(gw_store_stat_key(direct, "pp/d", &st), GW_ENOTFOUND);
	}
	assert_int_equal(strays_under(direct, "pp/"), 0);
	/* 500 on every attempt (retries=1 here): the same, after its retry. */
	gw_store_free(store);
	gw_store_free(direct);
	open_pair(GW_S3_BUCKET_PLAIN, "&parallel=4", "&retries=1", &store, &direct);
	proxy_rules("[{\"fault\":\"status\",\"status\":500,\"method\":\"PUT\",\"path\":\"/p/pp/e\\\\?partNumber=2&\"}]");
	rc = write_pattern(store, "pp/e", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 35);
	proxy_rules("[]");
	assert_int_equal(rc, GW_EIO);
	assert_non_null(strstr(gw_error_message(), "after 2 attempts"));
	assert_int_equal(proxy_count("fault status", "pp/e?partNumber=2&"), 2);
	{
		gw_store_stat st;
		assert_int_equal(gw_store_stat_key(direct, "pp/e", &st), GW_ENOTFOUND);
	}
	assert_int_equal(strays_under(direct, "pp/"), 0);
	assert_int_equal(gw_s3_from_store(store)->buffered, 0);
	gw_store_free(store);
	gw_store_free(direct);
}

typedef struct {
	gw_store *store;
	int index;
	int rc;
} writer_job;

static void *write_three_parts(void *arg)
{
	writer_job *j = arg;
	char key[64];
	snprintf(key, sizeof(key), "budget/w%d", j->index);
	j->rc = write_pattern(j->store, key, 2ull * S3_PART_SIZE + 1, GW_STORE_SIZE_UNKNOWN, 1 << 20, 100 + (uint64_t)j->index);
	return NULL;
}

/*
 * Memory stays bounded however many objects are open: eight writers of
 * three parts at once with parallel=16, every part held back a while by
 * the server, would want 128 MiB of buffers past their first two each;
 * they get S3_BUFFER_BUDGET, wait for their own parts, and all finish.
 */
static void test_parallel_budget(void **state)
{
	enum { WRITERS = 8 };
	writer_job jobs[WRITERS];
	pthread_t threads[WRITERS];
	gw_store *store, *direct;
	gw_s3 *s3;
	int i;
	(void)state;
	open_pair(GW_S3_BUCKET_PLAIN, "&parallel=16", NULL, &store, &direct);
	s3 = gw_s3_from_store(store);
	proxy_rules("[{\"fault\":\"delay\",\"delay\":0.5,\"method\":\"PUT\",\"path\":\"partNumber=\"}]");
	for (i = 0; i < WRITERS; i++) {
		jobs[i] = (writer_job){store, i, -1};
		assert_int_equal(pthread_create(&threads[i], NULL, write_three_parts, &jobs[i]), 0);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
	}
	proxy_rules("[]");
	assert_int_equal(s3->buffered_peak, S3_BUFFER_BUDGET);
	assert_int_equal(s3->buffered, 0);
	assert_true(s3->nworkers <= S3_WORKERS_MAX);
	for (i = 0; i < WRITERS; i++) {
		char key[64];
		snprintf(key, sizeof(key), "budget/w%d", i);
		check_pattern(direct, key, 2ull * S3_PART_SIZE + 1, 100 + (uint64_t)i);
		assert_int_equal(gw_store_remove(direct, key), 0);
	}
	gw_store_free(store);
	gw_store_free(direct);
}

/*
 * Parallel ranges (parallel=4, an object of three chunks) under every
 * fault: a range reset halfway, dropped, answered 5xx, delayed or stalled
 * is fetched again on its own, and the bytes come out whole and in order.
 * A reader freed while its ranges are held back stops them at once.
 */
static void test_parallel_ranges(void **state)
{
	const uint64_t size = 2ull * S3_READ_CHUNK + 1;
	gw_store *store, *direct;
	gw_store_reader *r;
	unsigned char byte;
	double t0;
	size_t i;
	(void)state;
	open_pair(GW_S3_BUCKET_PLAIN, "&parallel=4", NULL, &store, &direct);
	assert_int_equal(write_pattern(direct, "pr/obj", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 41), 0);
	for (i = 0; i < NFAULTS; i++) {
		int before = proxy_count("fault ", "/p/pr/obj");
		set_fault(&faults[i], "GET", "/p/pr/obj$");
		check_pattern(store, "pr/obj", size, 41);
		proxy_rules("[]");
		if (faults[i].times >= 0)
			assert_int_equal(proxy_count("fault ", "/p/pr/obj") - before, faults[i].times);
	}
	/* A range whose answer stops halfway through its body. */
	proxy_rules("[{\"fault\":\"stall\",\"forward\":true,\"method\":\"GET\",\"path\":\"/p/pr/obj$\",\"count\":1}]");
	check_pattern(store, "pr/obj", size, 41);
	proxy_rules("[]");

	/* Two of the three ranges held back 8 s; the reader is freed after its first byte. */
	proxy_rules("[{\"fault\":\"delay\",\"delay\":8,\"method\":\"GET\",\"path\":\"/p/pr/obj$\",\"count\":2}]");
	assert_int_equal(gw_store_read_open(&r, store, "pr/obj", 0, GW_STORE_TO_END), 0);
	assert_int_equal(gw_store_reader_read(r, &byte, 1), 1);
	t0 = now_s();
	gw_store_reader_free(r);
	proxy_rules("[]");
	if (now_s() - t0 > 5)
		fail_msg("freeing a reader with ranges in flight took %.1f s", now_s() - t0);
	assert_int_equal(gw_s3_from_store(store)->buffered, 0);
	assert_int_equal(gw_store_remove(direct, "pr/obj"), 0);
	gw_store_free(store);
	gw_store_free(direct);
}

typedef struct {
	gw_store *store;
	const char *key;
	const char *body;
	int rc;
	char msg[1024];
	double took;
} put_job;

static void *put_thread(void *arg)
{
	put_job *j = arg;
	double t0 = now_s();
	j->rc = gw_store_put(j->store, j->key, j->body, strlen(j->body));
	if (j->rc < 0)
		snprintf(j->msg, sizeof(j->msg), "%s", gw_error_message());
	j->took = now_s() - t0;
	return NULL;
}

/*
 * A store that stalls for good: the store is unhealthy within the stall
 * limit of the first stall (well within 10 s), the write fails at its
 * deadline (not after retries x 60 s), and the first answer after makes the
 * store healthy again.
 */
static void test_stall_health_deadline(void **state)
{
	char url[1200];
	gw_store *store, *direct;
	gw_store_health h;
	put_job job = {.key = "stalled", .body = "never stored"};
	pthread_t th;
	double t_fault, until;
	int64_t before_us = gw_time_now_us();
	(void)state;
	/* retries= many: the deadline, not the attempts, ends it. */
	open_pair(GW_S3_BUCKET_PLAIN, NULL, "&retries=20&deadline=4s", &store, &direct);
	gw_store_health_get(store, &h);
	assert_int_equal(h.healthy, 1);
	assert_true(h.last_ok_us >= before_us);

	proxy_rules("[{\"fault\":\"stall\",\"method\":\"PUT\",\"path\":\"/p/stalled$\"}]");
	job.store = store;
	assert_int_equal(pthread_create(&th, NULL, put_thread, &job), 0);
	proxy_wait("fault stall", "/p/stalled", 1);
	t_fault = now_s();
	for (until = t_fault + 10;; nap_ms(50)) {
		gw_store_health_get(store, &h);
		if (!h.healthy)
			break;
		if (now_s() > until)
			fail_msg("the store still looks healthy 10 s after the stall began");
	}
	/* Stall limit (1 s) plus the progress callback's second; the trouble dates from the stall. */
	assert_true(now_s() - t_fault < 4);
	assert_true(h.since_us >= before_us && h.since_us <= gw_time_now_us());
	assert_true(h.reason[0] != '\0');
	pthread_join(th, NULL);
	assert_int_equal(job.rc, GW_EIO);
	assert_non_null(strstr(job.msg, "deadline"));
	assert_non_null(strstr(job.msg, "key stalled"));
	assert_true(job.took < 9);
	gw_store_health_get(store, &h);
	assert_int_equal(h.healthy, 0);
	assert_true(h.failures >= 2);

	/* The store answers again: healthy. */
	proxy_rules("[]");
	assert_int_equal(gw_store_put(store, "after", "fine", 4), 0);
	gw_store_health_get(store, &h);
	assert_int_equal(h.healthy, 1);
	assert_int_equal(h.since_us, 0);
	assert_int_equal(h.failures, 0);
	assert_string_equal(h.reason, "");

	/* A refusing store is unhealthy at once, and names why. */
	proxy_rules("[{\"fault\":\"refuse\",\"seconds\":30}]");
	proxy_wait("listener closed", NULL, 1);
	{
		gw_store_stat st;
		gw_store *quick;
		snprintf(url, sizeof(url), "%s&retries=0", gw_store_url(store));
		assert_int_equal(gw_store_open_flags(&quick, url, GW_STORE_OPEN_DEFER_CHECKS), 0);
		gw_store_health_get(quick, &h);
		assert_int_equal(h.healthy, 0);
		assert_non_null(strstr(h.reason, "onnect"));
		assert_int_equal(gw_store_stat_key(quick, "after", &st), GW_EIO);
		gw_store_free(quick);
	}
	proxy_rules("[]");
	proxy_wait("listening again", NULL, 1);
	gw_store_free(store);
	gw_store_free(direct);
}

/*
 * The answer to a write is lost while another object takes the key: the
 * look-up finds it and says GW_EEXISTS, without a second version.
 */
static void test_lost_answer_other_object(void **state)
{
	static const int kinds[] = {GW_S3_BUCKET_PLAIN, GW_S3_BUCKET_LOCK};
	size_t k;
	(void)state;
	for (k = 0; k < 2; k++) {
		gw_store *store, *direct;
		put_job job = {.key = "contended", .body = "mine"};
		pthread_t th;
		char *out;
		size_t len;
		open_pair(kinds[k], kinds[k] == GW_S3_BUCKET_LOCK ? "&lock=governance&retain=1h" : NULL, NULL, &store,
			  &direct);
		proxy_rules("[{\"fault\":\"stall\",\"method\":\"PUT\",\"path\":\"/p/contended$\",\"count\":1}]");
		job.store = store;
		assert_int_equal(pthread_create(&th, NULL, put_thread, &job), 0);
		proxy_wait("fault stall", "/p/contended", (int)k + 1);
		assert_int_equal(gw_store_put(direct, "contended", "theirs", 6), 0);
		pthread_join(th, NULL);
		proxy_rules("[]");
		assert_int_equal(job.rc, GW_EEXISTS);
		assert_non_null(strstr(job.msg, "key contended already exists"));
		assert_int_equal(gw_store_get(direct, "contended", 100, &out, &len), 0);
		assert_int_equal(len, 6);
		assert_memory_equal(out, "theirs", 6);
		free(out);
		if (kinds[k] == GW_S3_BUCKET_LOCK)
			assert_one_version(direct, "contended");
		gw_store_free(store);
		gw_store_free(direct);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_faults),
		cmocka_unit_test(test_multipart_faults),
		cmocka_unit_test(test_get_faults),
		cmocka_unit_test(test_stall_health_deadline),
		cmocka_unit_test(test_lost_answer_other_object),
		cmocka_unit_test(test_parallel_parts),
		cmocka_unit_test(test_parallel_budget),
		cmocka_unit_test(test_parallel_ranges),
	};
	if (!(endpoint = getenv("GITWAL_TEST_S3_ENDPOINT")) || !*endpoint) {
		printf("skipped: GITWAL_TEST_S3_ENDPOINT is not set (scripts/test.sh starts radosgw and sets it)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
