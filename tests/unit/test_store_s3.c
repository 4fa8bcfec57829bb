/*
 * The s3:// driver against a real S3 server (scripts/rgw.sh starts Ceph
 * radosgw on 127.0.0.1; scripts/test.sh exports GITWAL_TEST_S3_ENDPOINT and
 * the test credentials). Without GITWAL_TEST_S3_ENDPOINT the test exits 77,
 * which CTest reports as skipped; what needs no server (URLs, credentials
 * files, XML answers) is test_store_s3_offline.c, which always runs.
 *
 * Each test makes its own buckets, named after the process and a counter, so
 * the tests can run side by side and again on the same server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gitwal/error.h"
#include "gitwal/store.h"
#include "store/s3.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *endpoint;

/* A fresh bucket of the given kind; its store URL (with `params` appended) into url. */
static void make_bucket(char *url, size_t size, int kind, const char *params)
{
	static unsigned counter;
	char bucket[64], base[512];
	snprintf(bucket, sizeof(bucket), "gwt-%ld-%ld-%u", (long)getpid(), (long)time(NULL) % 100000, ++counter);
	snprintf(base, sizeof(base), "s3://%s/pre/fix?endpoint=%s&region=us-east-1&path_style=true", bucket, endpoint);
	if (gw_s3_bucket_create(base, kind) < 0)
		fail_msg("cannot create bucket %s: %s", bucket, gw_error_message());
	snprintf(url, size, "%s%s", base, params ? params : "");
}

static gw_store *open_new(int kind, const char *params)
{
	char url[1024];
	gw_store *store;
	make_bucket(url, sizeof(url), kind, params);
	if (gw_store_open(&store, url) < 0)
		fail_msg("open %s: %s", url, gw_error_message());
	return store;
}

/* Deterministic bytes, different per seed. */
#include "store_pattern.h"


static void test_small_roundtrip_and_range(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	const char *text = "0123456789abcdefghij";
	gw_store_reader *r;
	gw_store_stat st;
	char *out, buf[64];
	size_t len;
	ssize_t n;
	(void)state;

	assert_int_equal(gw_store_features(store), 0);
	assert_int_equal(gw_store_put(store, "a/b+c=d%e.txt", text, strlen(text)), 0);
	assert_int_equal(gw_store_get(store, "a/b+c=d%e.txt", 1024, &out, &len), 0);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(out, text, len);
	free(out);
	assert_int_equal(gw_store_stat_key(store, "a/b+c=d%e.txt", &st), 0);
	assert_int_equal(st.size, strlen(text));
	assert_int_equal(st.versions, 1);
	assert_int_equal(st.retain_until, 0);
	assert_true(st.mtime > time(NULL) - 3600 && st.mtime < time(NULL) + 3600);

	assert_int_equal(gw_store_read_open(&r, store, "a/b+c=d%e.txt", 5, 7), 0);
	n = gw_store_reader_read(r, buf, sizeof(buf));
	assert_int_equal(n, 7);
	assert_memory_equal(buf, "56789ab", 7);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 0);
	gw_store_reader_free(r);

	/* An empty object is an object too. */
	assert_int_equal(gw_store_put(store, "empty", "", 0), 0);
	assert_int_equal(gw_store_get(store, "empty", 10, &out, &len), 0);
	assert_int_equal(len, 0);
	free(out);

	assert_int_equal(gw_store_stat_key(store, "missing", &st), GW_ENOTFOUND);
	assert_non_null(strstr(gw_error_message(), "key missing not found"));
	assert_int_equal(gw_store_read_open(&r, store, "missing", 0, GW_STORE_TO_END), GW_ENOTFOUND);
	assert_int_equal(gw_store_remove(store, "a/b+c=d%e.txt"), 0);
	assert_int_equal(gw_store_stat_key(store, "a/b+c=d%e.txt", &st), GW_ENOTFOUND);
	assert_int_equal(gw_store_remove(store, "a/b+c=d%e.txt"), GW_ENOTFOUND);
	gw_store_free(store);
}

static void test_large_known_size(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	const uint64_t size = 40u << 20;
	gw_store_stat st;
	(void)state;
	/* Known size, larger than a part: multipart with a length for every part. */
	assert_int_equal(write_pattern(store, "big/known", size, size, 1 << 20, 1), 0);
	assert_int_equal(gw_store_stat_key(store, "big/known", &st), 0);
	assert_int_equal(st.size, size);
	check_pattern(store, "big/known", size, 1);
	gw_store_free(store);
}

static void test_streamed_unknown_size(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	(void)state;
	/* Unknown size: one PUT when it fits a part, multipart otherwise; odd write sizes. */
	assert_int_equal(write_pattern(store, "s/small", 300001, GW_STORE_SIZE_UNKNOWN, 4093, 2), 0);
	check_pattern(store, "s/small", 300001, 2);
	assert_int_equal(write_pattern(store, "s/exact", 8u << 20, GW_STORE_SIZE_UNKNOWN, 65536, 3), 0);
	check_pattern(store, "s/exact", 8u << 20, 3);
	assert_int_equal(write_pattern(store, "s/large", (19u << 20) + 12345, GW_STORE_SIZE_UNKNOWN, 777777, 4), 0);
	check_pattern(store, "s/large", (19u << 20) + 12345, 4);
	gw_store_free(store);
}

/* Listing: keys written by several threads come back in order, page after page. */
typedef struct {
	gw_store *store;
	int first, count, step;
	int failures;
} put_job;

/* Several threads on one store: the way parallel backups use it. */
static void *put_many(void *arg)
{
	put_job *j = arg;
	int i;
	for (i = j->first; i < j->count; i += j->step) {
		char key[64], body[32];
		int n = snprintf(body, sizeof(body), "%d", i);
		snprintf(key, sizeof(key), "many/k%05d", i);
		if (gw_store_put(j->store, key, body, (size_t)n) < 0)
			j->failures++;
	}
	return NULL;
}

/* Keys many/k00000 to many/k<n-1> written by PUT_THREADS threads at once. */
#define PUT_THREADS 6
static void put_many_at_once(gw_store *store, int n)
{
	put_job jobs[PUT_THREADS];
	pthread_t threads[PUT_THREADS];
	int i;
	for (i = 0; i < PUT_THREADS; i++) {
		jobs[i] = (put_job){store, i, n, PUT_THREADS, 0};
		assert_int_equal(pthread_create(&threads[i], NULL, put_many, &jobs[i]), 0);
	}
	for (i = 0; i < PUT_THREADS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(jobs[i].failures, 0);
	}
}

static int stop_at_5(const gw_store_entry *e, void *payload)
{
	(void)e;
	return ++*(int *)payload == 5 ? 42 : 0;
}

static void test_list_pagination(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	enum { N = 1234 };
	gw_store_listing l = {0};
	size_t i;
	int seen = 0;
	(void)state;

	put_many_at_once(store, N);
	assert_int_equal(gw_store_put(store, "manz", "x", 1), 0);
	assert_int_equal(gw_store_list(store, "many/", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, N);
	for (i = 0; i < l.count; i++) {
		char want[64];
		snprintf(want, sizeof(want), "many/k%05zu", i);
		assert_string_equal(l.keys[i], want);
	}
	gw_store_listing_dispose(&l);
	/* A prefix that is not a directory, and the whole store. */
	assert_int_equal(gw_store_list(store, "many/k001", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 100);
	gw_store_listing_dispose(&l);
	assert_int_equal(gw_store_list(store, "", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, N + 1);
	assert_string_equal(l.keys[N], "manz");
	gw_store_listing_dispose(&l);
	/* Starting after a key (S3 start-after), across pages: only what follows it. */
	assert_int_equal(gw_store_list_after(store, "many/", "many/k00010", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, N - 11);
	assert_string_equal(l.keys[0], "many/k00011");
	gw_store_listing_dispose(&l);
	assert_int_equal(gw_store_list_after(store, "", "many/~", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.keys[0], "manz");
	gw_store_listing_dispose(&l);
	assert_int_equal(gw_store_list(store, "many/", stop_at_5, &seen), 42);
	assert_int_equal(seen, 5);
	gw_store_free(store);
}

/* Pending multipart uploads of the store's bucket (GET ?uploads=). */
static int pending_uploads(gw_store *store)
{
	s3_request req = {.method = "GET", .query = "uploads="};
	char *id = NULL;
	int found;
	assert_int_equal(s3_request_run(gw_s3_from_store(store), &req), 0);
	assert_int_equal(s3_xml_text(req.response->data, req.response->len, "UploadId", &id), 0);
	found = id != NULL;
	free(id);
	s3_request_dispose(&req);
	return found;
}

static void test_create_only(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	gw_store_writer *w;
	gw_store_stat st;
	unsigned char chunk[65536];
	char *out;
	size_t len;
	int i;
	(void)state;

	assert_int_equal(gw_store_put(store, "once", "first", 5), 0);
	assert_int_equal(gw_store_put(store, "once", "second", 6), GW_EEXISTS);
	assert_non_null(strstr(gw_error_message(), "key once already exists in store s3://"));
	assert_int_equal(gw_store_get(store, "once", 100, &out, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "first", 5);
	free(out);

	/* The multipart path refuses a taken key as well, and leaves no upload behind. */
	assert_int_equal(write_pattern(store, "big", 9u << 20, GW_STORE_SIZE_UNKNOWN, 65536, 5), 0);
	assert_int_equal(write_pattern(store, "big", 9u << 20, GW_STORE_SIZE_UNKNOWN, 65536, 6), GW_EEXISTS);
	check_pattern(store, "big", 9u << 20, 5);
	assert_int_equal(pending_uploads(store), 0);

	/* A writer freed without commit leaves nothing under its key, multipart or not. */
	assert_int_equal(gw_store_write_open(&w, store, "abandoned", GW_STORE_SIZE_UNKNOWN), 0);
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < 200; i++)
		assert_int_equal(gw_store_writer_write(w, chunk, sizeof(chunk)), 0);
	assert_int_equal(pending_uploads(store), 1);
	gw_store_writer_free(w);
	assert_int_equal(pending_uploads(store), 0);
	assert_int_equal(gw_store_stat_key(store, "abandoned", &st), GW_ENOTFOUND);
	assert_int_equal(gw_store_write_open(&w, store, "abandoned2", 10), 0);
	assert_int_equal(gw_store_writer_write(w, "0123456789", 10), 0);
	gw_store_writer_free(w);
	assert_int_equal(gw_store_stat_key(store, "abandoned2", &st), GW_ENOTFOUND);
	gw_store_free(store);
}

static void test_corrupt_body_refused(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	/* The MD5 of other bytes than those sent: what damage on the way looks like to the server. */
	s3_request req = {.method = "PUT", .key = "damaged", .body = "payload", .body_len = 7,
			  .headers = {"Content-MD5: XUFAKrxLKna5cZ2REBfFkg=="}};
	gw_store_stat st;
	(void)state;
	assert_int_equal(s3_request_run(gw_s3_from_store(store), &req), GW_ECORRUPT);
	assert_non_null(strstr(gw_error_message(), "does not match its checksum (BadDigest)"));
	s3_request_dispose(&req);
	assert_int_equal(gw_store_stat_key(store, "damaged", &st), GW_ENOTFOUND);
	gw_store_free(store);
}

static void test_versioned_bucket(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_VERSIONED, NULL);
	gw_store_stat st;
	(void)state;
	assert_int_equal(gw_store_features(store), GW_STORE_FEATURE_VERSIONS);
	/* The server would keep both as versions; the driver refuses the second itself. */
	assert_int_equal(gw_store_put(store, "v", "one", 3), 0);
	assert_int_equal(gw_store_put(store, "v", "two", 3), GW_EEXISTS);
	assert_int_equal(write_pattern(store, "v", 9u << 20, GW_STORE_SIZE_UNKNOWN, 65536, 7), GW_EEXISTS);
	assert_int_equal(gw_store_stat_key(store, "v", &st), 0);
	assert_int_equal(st.versions, 1);
	assert_int_equal(st.size, 3);
	/* Remove takes every version, not only the latest. */
	assert_int_equal(gw_store_remove(store, "v"), 0);
	assert_int_equal(gw_store_stat_key(store, "v", &st), GW_ENOTFOUND);
	gw_store_free(store);
}

static void test_object_lock(void **state)
{
	char url[1024];
	gw_store *store;
	gw_store_stat st;
	s3_request req;
	char first_version[128], until[40], body[256], *out;
	size_t len;
	time_t now = time(NULL);
	(void)state;

	/* lock= on a bucket without Object Lock is refused at open. */
	make_bucket(url, sizeof(url), GW_S3_BUCKET_VERSIONED, "&lock=compliance&retain=1d");
	assert_int_equal(gw_store_open(&store, url), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "has no Object Lock"));

	store = open_new(GW_S3_BUCKET_LOCK, "&lock=compliance&retain=2d");
	assert_int_equal(gw_store_features(store), GW_STORE_FEATURE_VERSIONS | GW_STORE_FEATURE_LOCK);
	assert_int_equal(gw_store_put(store, "locked", "original", 8), 0);
	assert_int_equal(gw_store_stat_key(store, "locked", &st), 0);
	assert_true(st.retain_until >= now + 2 * 86400 - 60 && st.retain_until <= now + 2 * 86400 + 60);
	assert_int_equal(st.writable, 0);
	assert_int_equal(st.versions, 1);

	/* Multipart objects are locked from creation too. */
	assert_int_equal(write_pattern(store, "locked-big", 12u << 20, GW_STORE_SIZE_UNKNOWN, 65536, 8), 0);
	assert_int_equal(gw_store_stat_key(store, "locked-big", &st), 0);
	assert_true(st.retain_until >= now + 2 * 86400 - 60);

	/* It cannot be removed, and its retention cannot be shortened. */
	assert_int_equal(gw_store_remove(store, "locked"), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "Object Lock"));
	memset(&req, 0, sizeof(req));
	req.method = "HEAD";
	req.key = "locked";
	assert_int_equal(s3_request_run(gw_s3_from_store(store), &req), 0);
	snprintf(first_version, sizeof(first_version), "%s", req.version_id);
	assert_true(first_version[0] != '\0');
	s3_request_dispose(&req);
	s3_format_iso8601(until, sizeof(until), (int64_t)now + 3600);
	snprintf(body, sizeof(body),
		 "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode>"
		 "<RetainUntilDate>%s</RetainUntilDate></Retention>",
		 until);
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.key = "locked";
	req.query = "retention=";
	req.body = body;
	req.body_len = strlen(body);
	assert_int_equal(s3_request_run(gw_s3_from_store(store), &req), GW_EAUTH);
	s3_request_dispose(&req);

	/* The driver refuses a second write; another writer's makes a version, which stat reports. */
	assert_int_equal(gw_store_put(store, "locked", "replaced", 8), GW_EEXISTS);
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.key = "locked";
	req.body = "replaced";
	req.body_len = 8;
	assert_int_equal(s3_request_run(gw_s3_from_store(store), &req), 0);
	s3_request_dispose(&req);
	assert_int_equal(gw_store_stat_key(store, "locked", &st), 0);
	assert_int_equal(st.versions, 2);

	/* The original version is intact. */
	{
		s3_param p[1] = {{"versionId", first_version}};
		char *q = s3_query_build(p, 1);
		memset(&req, 0, sizeof(req));
		req.method = "GET";
		req.key = "locked";
		req.query = q;
		assert_int_equal(s3_request_run(gw_s3_from_store(store), &req), 0);
		assert_int_equal(req.response->len, 8);
		assert_memory_equal(req.response->data, "original", 8);
		s3_request_dispose(&req);
		free(q);
	}
	assert_int_equal(gw_store_get(store, "locked", 100, &out, &len), 0);
	free(out);
	gw_store_free(store);
}

static void test_wrong_secret(void **state)
{
	char url[1024], *saved = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
	const char *wrong = "Wr0ngSecretThatMustNeverBePrinted";
	gw_store *store;
	(void)state;
	make_bucket(url, sizeof(url), GW_S3_BUCKET_PLAIN, NULL);
	setenv("AWS_SECRET_ACCESS_KEY", wrong, 1);
	assert_int_equal(gw_store_open(&store, url), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "access denied (SignatureDoesNotMatch): check AWS_SECRET_ACCESS_KEY"));
	assert_non_null(strstr(gw_error_message(), "store s3://"));
	assert_null(strstr(gw_error_message(), wrong));
	assert_null(strstr(gw_error_message(), saved));
	setenv("AWS_ACCESS_KEY_ID", "nosuchkey", 1);
	assert_int_equal(gw_store_open(&store, url), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "check AWS_ACCESS_KEY_ID"));
	setenv("AWS_ACCESS_KEY_ID", "testkey", 1);
	setenv("AWS_SECRET_ACCESS_KEY", saved, 1);
	free(saved);
}

static void test_credentials_file(void **state)
{
	char url[1024], path[] = "/tmp/gitwal-s3-cred.XXXXXX";
	char *key = strdup(getenv("AWS_ACCESS_KEY_ID")), *secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
	gw_store *store;
	FILE *f;
	int fd;
	(void)state;

	make_bucket(url, sizeof(url), GW_S3_BUCKET_PLAIN, NULL);
	assert_true((fd = mkstemp(path)) >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
		   "[gitwal]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		key, secret);
	fclose(f);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_PROFILE", "gitwal", 1);

	/* Reading the file (its mode, its profiles): test_store_s3_offline.c. */
	chmod(path, 0600);
	if (gw_store_open(&store, url) < 0)
		fail_msg("open with a 0600 credentials file: %s", gw_error_message());
	assert_int_equal(gw_store_put(store, "from-file", "x", 1), 0);
	assert_null(strstr(gw_store_url(store), secret));
	gw_store_free(store);

	unlink(path);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	setenv("AWS_ACCESS_KEY_ID", key, 1);
	setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	free(key);
	free(secret);
}

/* A multipart upload begun with one part of `body` and never completed: what a killed writer leaves. */
static char *start_upload(gw_store *store, const char *key, const char *body)
{
	gw_s3 *s3 = gw_s3_from_store(store);
	s3_request req = {.method = "POST", .key = key, .query = "uploads="};
	s3_param params[2] = {{"partNumber", "1"}, {"uploadId", NULL}};
	char *id = NULL, *query;
	assert_int_equal(s3_request_run(s3, &req), 0);
	assert_int_equal(s3_xml_text(req.response->data, req.response->len, "UploadId", &id), 0);
	assert_non_null(id);
	s3_request_dispose(&req);
	params[1].value = id;
	assert_non_null(query = s3_query_build(params, 2));
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.key = key;
	req.query = query;
	req.body = body;
	req.body_len = strlen(body);
	assert_int_equal(s3_request_run(s3, &req), 0);
	s3_request_dispose(&req);
	free(query);
	return id;
}

typedef struct {
	char key[8][128], name[8][256];
	uint64_t size[8];
	int live[8], removable[8];
	size_t n;
} uploads;

static int collect_upload(const gw_store_stray *st, void *payload)
{
	uploads *u = payload;
	assert_true(u->n < 8);
	assert_int_equal(st->kind, GW_STORE_STRAY_LEFTOVER);
	assert_string_equal(st->type, "incomplete upload");
	assert_true(st->mtime > 0 && st->mtime <= (int64_t)time(NULL) + 60);
	snprintf(u->key[u->n], sizeof(u->key[0]), "%s", st->key);
	snprintf(u->name[u->n], sizeof(u->name[0]), "%s", st->name);
	u->size[u->n] = st->size;
	u->live[u->n] = st->live;
	u->removable[u->n] = st->removable;
	u->n++;
	return 0;
}

static uploads strays_of(gw_store *store, const char *prefix)
{
	uploads u;
	memset(&u, 0, sizeof(u));
	if (gw_store_strays(store, prefix, collect_upload, &u) < 0)
		fail_msg("strays %s: %s", prefix, gw_error_message());
	return u;
}

/*
 * Incomplete multipart uploads are strays; the first commit of a store object
 * under a directory of keys aborts those older than upload_max_age there
 * (never its own uploads in progress), once per directory.
 */
static void test_stale_uploads(void **state)
{
	char url[1024];
	gw_store *store, *other;
	gw_store_writer *mine;
	unsigned char *big = calloc(1, (9u << 20));
	char *dead, *dead_q, *late;
	uploads u;
	int i;
	(void)state;

	make_bucket(url, sizeof(url), GW_S3_BUCKET_PLAIN, "&upload_max_age=2s");
	assert_int_equal(gw_store_open(&store, url), 0);
	assert_int_equal(gw_store_open(&other, url), 0);
	dead = start_upload(other, "r/00000000000000000001.full.bundle", "hello");
	dead_q = start_upload(other, "q/k", "x");
	/* This store's own upload in progress: past one part, not committed. */
	assert_non_null(big);
	assert_int_equal(gw_store_write_open(&mine, store, "r/mine", GW_STORE_SIZE_UNKNOWN), 0);
	assert_int_equal(gw_store_writer_write(mine, big, 9u << 20), 0);
	assert_int_equal(gw_store_writer_write(mine, "x", 1), 0); /* the first part goes */

	u = strays_of(store, "r/");
	assert_int_equal(u.n, 2);
	for (i = 0; i < 2; i++) {
		if (!strcmp(u.name[i], dead)) {
			assert_string_equal(u.key[i], "r/00000000000000000001.full.bundle");
			assert_int_equal(u.size[i], 5);
			assert_false(u.live[i]);
		} else {
			assert_string_equal(u.key[i], "r/mine");
			assert_true(u.live[i]);
			assert_false(u.removable[i]);
		}
	}
	assert_int_equal(strays_of(store, "").n, 3);
	assert_int_equal(strays_of(store, "q/").n, 1);

	/* Until the dead one is past upload_max_age (2 s): wait for the store to say so. */
	for (i = 0; i < 300; i++) {
		u = strays_of(store, "r/");
		if ((!strcmp(u.name[0], dead) && u.removable[0]) || (!strcmp(u.name[1], dead) && u.removable[1]))
			break;
		usleep(100 * 1000);
	}
	assert_true(i < 300);
	/* The first commit under r/ aborts it, not its own upload, not q/'s. */
	assert_int_equal(gw_store_put(store, "r/00000000000000000002.seg", "s", 1), 0);
	u = strays_of(store, "");
	assert_int_equal(u.n, 2);
	assert_true(!strcmp(u.key[0], "r/mine") || !strcmp(u.key[1], "r/mine"));
	assert_true(!strcmp(u.name[0], dead_q) || !strcmp(u.name[1], dead_q));
	assert_int_equal(gw_store_writer_commit(mine), 0);
	gw_store_writer_free(mine);
	/* Once per directory: a later stale upload there waits for another process (store object). */
	late = start_upload(other, "r/late", "late");
	for (i = 0; i < 300 && !strays_of(store, "r/").removable[0]; i++)
		usleep(100 * 1000);
	assert_true(i < 300);
	assert_int_equal(gw_store_put(store, "r/00000000000000000003.seg", "s", 1), 0);
	u = strays_of(store, "r/");
	assert_int_equal(u.n, 1);
	assert_string_equal(u.name[0], late);
	assert_int_equal(gw_store_put(other, "r/00000000000000000004.seg", "s", 1), 0);
	assert_int_equal(strays_of(store, "r/").n, 0);
	assert_int_equal(gw_store_put(store, "q/done", "s", 1), 0);
	assert_int_equal(strays_of(store, "").n, 0);
	{
		gw_store_stat st;
		assert_int_equal(gw_store_stat_key(store, "r/mine", &st), 0);
		assert_int_equal(st.size, (9u << 20) + 1);
	}
	free(dead);
	free(dead_q);
	free(late);
	free(big);
	gw_store_free(other);
	gw_store_free(store);
}

/* Remove every key under prefix: the big objects of a test go, so the shared test server does not fill up. */
static void remove_all(gw_store *store, const char *prefix)
{
	gw_store_listing l;
	size_t i;
	memset(&l, 0, sizeof(l));
	assert_int_equal(gw_store_list_all(store, prefix, &l), 0);
	for (i = 0; i < l.count; i++)
		assert_int_equal(gw_store_remove(store, l.keys[i]), 0);
	gw_store_listing_dispose(&l);
}

/* Requests of one method since `before`. */
static uint64_t requests_since(gw_store *store, const s3_stats *before, int method)
{
	s3_stats now;
	s3_stats_get(gw_s3_from_store(store), &now);
	return now.requests[method] - before->requests[method];
}

/* Bytes [offset, offset + len) of a pattern object, read through a reader of that range. */
static void check_range(gw_store *store, const char *key, uint64_t offset, uint64_t len, uint64_t seed)
{
	unsigned char *got = malloc(65536), *want = malloc(65536);
	gw_store_reader *r;
	uint64_t done = 0;
	ssize_t n;
	if (gw_store_read_open(&r, store, key, offset, len) < 0)
		fail_msg("read_open %s at %llu: %s", key, (unsigned long long)offset, gw_error_message());
	while ((n = gw_store_reader_read(r, got, 65536)) > 0) {
		fill_pattern(want, (size_t)n, seed, offset + done);
		if (memcmp(got, want, (size_t)n))
			fail_msg("%s: bytes differ in [%llu, +%zd)", key, (unsigned long long)(offset + done), n);
		done += (uint64_t)n;
	}
	assert_true(n == 0);
	assert_int_equal(done, len);
	gw_store_reader_free(r);
	free(got);
	free(want);
}

/*
 * Parallel parts: an object of several parts with parallel=4 goes up as
 * one multipart upload (one PUT per part, nothing else per part) and reads
 * back whole; objects at the reader's chunk boundaries, read whole and in
 * ranges that cross chunks, with several ranges in flight.
 */
static void test_parallel_transfers(void **state)
{
	static const uint64_t sizes[] = {0, 1, S3_READ_CHUNK - 1, S3_READ_CHUNK, S3_READ_CHUNK + 1,
					 3ull * S3_READ_CHUNK + 17};
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, "&parallel=4");
	gw_s3 *s3 = gw_s3_from_store(store);
	const uint64_t big = 5ull * S3_PART_SIZE + 123;
	s3_stats before;
	size_t i;
	(void)state;

	s3_stats_get(s3, &before);
	assert_int_equal(write_pattern(store, "par/big", big, GW_STORE_SIZE_UNKNOWN, 1 << 20, 11), 0);
	/* Six parts, each one PUT; CreateMultipartUpload and its completion; the key-free check. */
	assert_int_equal(requests_since(store, &before, S3_M_PUT), 6);
	assert_int_equal(requests_since(store, &before, S3_M_POST), 2);
	assert_int_equal(requests_since(store, &before, S3_M_HEAD), 1);
	check_pattern(store, "par/big", big, 11);
	/* Ranges across chunk boundaries, from inside the first chunk to inside the last. */
	check_range(store, "par/big", S3_READ_CHUNK - 5, 10, 11);
	check_range(store, "par/big", 3, 2ull * S3_READ_CHUNK + 1, 11);
	check_range(store, "par/big", S3_READ_CHUNK, big - S3_READ_CHUNK, 11);

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char key[64];
		snprintf(key, sizeof(key), "par/size-%llu", (unsigned long long)sizes[i]);
		assert_int_equal(write_pattern(store, key, sizes[i], GW_STORE_SIZE_UNKNOWN, 777777, 20 + i), 0);
		s3_stats_get(s3, &before);
		check_pattern(store, key, sizes[i], 20 + i);
		/* One HEAD, then one GET per chunk (none for an empty object). */
		assert_int_equal(requests_since(store, &before, S3_M_GET), (sizes[i] + S3_READ_CHUNK - 1) / S3_READ_CHUNK);
	}
	/* Every buffer went back to the budget. */
	assert_int_equal(s3->buffered, 0);
	remove_all(store, "par/");
	gw_store_free(store);
}

/*
 * A key replaced while a parallel reader is open: the ranges asked for
 * after it fail with GW_ECHANGED (If-Match), never a mix of two versions;
 * and a reader freed with ranges in flight stops them.
 */
static void test_parallel_read_changed(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, "&parallel=2");
	const uint64_t size = 4ull * S3_READ_CHUNK;
	unsigned char *buf = malloc(S3_READ_CHUNK), *want = malloc(S3_READ_CHUNK);
	gw_store_reader *r;
	ssize_t n = 0;
	uint64_t done = 0;
	s3_request put = {.method = "PUT", .key = "chg/obj", .body = "replaced", .body_len = 8};
	(void)state;

	assert_int_equal(write_pattern(store, "chg/obj", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 5), 0);
	assert_int_equal(gw_store_read_open(&r, store, "chg/obj", 0, GW_STORE_TO_END), 0);
	/* The first chunk read: chunks 0 and 1 were asked for; the third is asked for once it is handed out. */
	while (done < S3_READ_CHUNK && (n = gw_store_reader_read(r, buf, S3_READ_CHUNK - (size_t)done)) > 0)
		done += (uint64_t)n;
	assert_int_equal(done, S3_READ_CHUNK);
	fill_pattern(want, S3_READ_CHUNK, 5, 0);
	assert_memory_equal(buf, want, S3_READ_CHUNK);
	/* Replaced behind the reader's back (a plain PUT, as another tool would). */
	assert_int_equal(s3_request_run(gw_s3_from_store(store), &put), 0);
	s3_request_dispose(&put);
	while ((n = gw_store_reader_read(r, buf, S3_READ_CHUNK)) > 0)
		done += (uint64_t)n;
	assert_int_equal(n, GW_ECHANGED);
	assert_non_null(strstr(gw_error_message(), "key chg/obj changed while it was read"));
	assert_true(done <= 2ull * S3_READ_CHUNK);
	/* Again: the error stays. */
	assert_int_equal(gw_store_reader_read(r, buf, 10), GW_ECHANGED);
	gw_store_reader_free(r);

	/* Freed after one byte, with ranges in flight. */
	assert_int_equal(write_pattern(store, "chg/other", size, GW_STORE_SIZE_UNKNOWN, 1 << 20, 6), 0);
	assert_int_equal(gw_store_read_open(&r, store, "chg/other", 0, GW_STORE_TO_END), 0);
	assert_int_equal(gw_store_reader_read(r, buf, 1), 1);
	gw_store_reader_free(r);
	assert_int_equal(gw_s3_from_store(store)->buffered, 0);
	free(buf);
	free(want);
	remove_all(store, "chg/");
	gw_store_free(store);
}

typedef struct {
	gw_store *store;
	int first, count;
} small_job;

static void *put_small(void *arg)
{
	small_job *j = arg;
	int i;
	for (i = j->first; i < j->first + j->count; i++) {
		char key[64];
		snprintf(key, sizeof(key), "conn/k%03d", i);
		if (gw_store_put(j->store, key, key, strlen(key)) < 0)
			fail_msg("put %s: %s", key, gw_error_message());
	}
	return NULL;
}

/*
 * Connections are reused across requests: 40 small PUTs one after another
 * open one connection, and 4 threads of 10 each at most one apiece (the
 * store's pool of handles keeps them open).
 */
static void test_connection_reuse(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	gw_s3 *s3 = gw_s3_from_store(store);
	small_job seq = {store, 0, 40}, jobs[4];
	pthread_t threads[4];
	s3_stats a, b;
	int i;
	(void)state;
	s3_stats_get(s3, &a);
	put_small(&seq);
	s3_stats_get(s3, &b);
	assert_int_equal(b.requests[S3_M_PUT] - a.requests[S3_M_PUT], 40);
	assert_true(b.connections - a.connections <= 1);
	for (i = 0; i < 4; i++) {
		jobs[i] = (small_job){store, 100 + i * 10, 10};
		assert_int_equal(pthread_create(&threads[i], NULL, put_small, &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	s3_stats_get(s3, &a);
	assert_int_equal(a.requests[S3_M_PUT] - b.requests[S3_M_PUT], 40);
	assert_true(a.connections - b.connections <= 4);
	gw_store_free(store);
}

/* An open store's URL names no secret (parsing the URL itself: test_store_s3_offline.c). */
static void test_url_names_no_secret(void **state)
{
	gw_store *store;
	(void)state;
	store = open_new(GW_S3_BUCKET_PLAIN, NULL);
	assert_null(strstr(gw_store_url(store), getenv("AWS_SECRET_ACCESS_KEY")));
	assert_null(strstr(gw_store_url(store), getenv("AWS_ACCESS_KEY_ID")));
	gw_store_free(store);
}

typedef struct {
	size_t heard, removed;
} removals;

static int count_removal(const gw_store_removal *r, void *payload)
{
	removals *c = payload;
	c->heard++;
	c->removed += r->rc == 0;
	return 0;
}

/*
 * gw_store_remove_batch on a versioned bucket: 1,001 keys (and one that is
 * not there) go in two DeleteObjects after one version listing, never key by
 * key; each key is heard once; nothing of them is left, not even a version.
 */
static void test_remove_batch(void **state)
{
	gw_store *store = open_new(GW_S3_BUCKET_VERSIONED, NULL);
	enum { N = 1001 };
	gw_store_listing l = {0};
	removals c = {0, 0};
	s3_stats before;
	gw_store_stat st;
	const char **keys;
	size_t i;
	(void)state;

	put_many_at_once(store, N);
	assert_int_equal(gw_store_put(store, "other", "x", 1), 0);
	assert_int_equal(gw_store_list(store, "many/", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, N);
	assert_non_null(keys = calloc(N + 2, sizeof(*keys)));
	for (i = 0; i < N; i++)
		keys[i] = l.keys[N - 1 - i]; /* any order */
	keys[N] = "many/k99999";          /* not there: removed is what was asked */
	keys[N + 1] = keys[0];            /* twice: heard once */
	s3_stats_get(gw_s3_from_store(store), &before);
	assert_int_equal(gw_store_remove_batch(store, keys, N + 2, time(NULL), count_removal, &c), 0);
	assert_int_equal(c.heard, N + 1);
	assert_int_equal(c.removed, N + 1);
	assert_int_equal(requests_since(store, &before, S3_M_POST), 2);
	assert_int_equal(requests_since(store, &before, S3_M_DELETE), 0);
	assert_int_equal(requests_since(store, &before, S3_M_GET), 2); /* the version listing: 1,000 a page */
	gw_store_listing_dispose(&l);
	assert_int_equal(gw_store_list(store, "many/", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 0);
	gw_store_listing_dispose(&l);
	assert_int_equal(gw_store_stat_key(store, "other", &st), 0);
	assert_int_equal(gw_store_remove_batch(store, keys, 0, time(NULL), count_removal, &c), 0);
	free(keys);
	gw_store_free(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_names_no_secret),
		cmocka_unit_test(test_small_roundtrip_and_range),
		cmocka_unit_test(test_large_known_size),
		cmocka_unit_test(test_streamed_unknown_size),
		cmocka_unit_test(test_list_pagination),
		cmocka_unit_test(test_create_only),
		cmocka_unit_test(test_corrupt_body_refused),
		cmocka_unit_test(test_versioned_bucket),
		cmocka_unit_test(test_object_lock),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_credentials_file),
		cmocka_unit_test(test_stale_uploads),
		cmocka_unit_test(test_parallel_transfers),
		cmocka_unit_test(test_parallel_read_changed),
		cmocka_unit_test(test_connection_reuse),
		cmocka_unit_test(test_remove_batch),
	};
	endpoint = getenv("GITWAL_TEST_S3_ENDPOINT");
	if (!endpoint || !*endpoint) {
		printf("skipped: GITWAL_TEST_S3_ENDPOINT is not set (scripts/test.sh starts radosgw and sets it)\n");
		return 77;
	}
	if (!getenv("AWS_ACCESS_KEY_ID") || !getenv("AWS_SECRET_ACCESS_KEY")) {
		printf("GITWAL_TEST_S3_ENDPOINT is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
