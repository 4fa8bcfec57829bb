/*
 * Unit tests for wal/metrics.c: the registry, the Prometheus text renderer
 * (checked line by line), concurrent updates, the /metrics endpoint over
 * real sockets on loopback, spoken to with libcurl, and the series the
 * spool's uploads keep (wal/spool.c) rendered through a healthy and an
 * unreachable store.
 */
#include "testutil.h"

#include "gitwal/error.h"
#include "gitwal/index.h"
#include "gitwal/layout.h"
#include "gitwal/time.h"
#include "gitwal/metrics.h"
#include "gitwal/store.h"
#include "wal/spool.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>

/* Render reg and compare with the expected text, reporting the first differing line. */
static void assert_render(gw_metrics *reg, const char *expected)
{
	char *text;
	size_t len;
	assert_int_equal(gw_metrics_render(reg, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	if (strcmp(text, expected)) {
		const char *a = text, *b = expected;
		int line = 1;
		while (*a && *a == *b) {
			if (*a == '\n')
				line++;
			a++;
			b++;
		}
		print_error("render differs at line %d\n--- got:\n%s--- expected:\n%s", line, text, expected);
		free(text);
		fail();
	}
	free(text);
}

static void test_counter_render(void **state)
{
	gw_metrics *reg;
	gw_metrics_counter *plain, *ok, *err;
	gw_metrics_label lok = { "result", "ok" }, lerr = { "result", "error" };
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_render(reg, "");
	assert_int_equal(gw_metrics_counter_register(reg, "t_plain_total", "A plain counter.", NULL, 0, &plain), 0);
	assert_int_equal(gw_metrics_counter_register(reg, "t_requests_total", "Requests by result.", &lok, 1, &ok), 0);
	assert_int_equal(gw_metrics_counter_register(reg, "t_requests_total", "Requests by result.", &lerr, 1, &err),
			 0);
	gw_metrics_counter_inc(plain);
	gw_metrics_counter_add(ok, 41);
	gw_metrics_counter_inc(ok);
	gw_metrics_counter_add(err, 18446744073709551615ULL); /* uint64 max prints in full */
	gw_metrics_counter_inc(NULL);                         /* no-op */
	assert_int_equal(gw_metrics_counter_value(ok), 42);
	assert_render(reg, "# HELP t_plain_total A plain counter.\n"
			   "# TYPE t_plain_total counter\n"
			   "t_plain_total 1\n"
			   "# HELP t_requests_total Requests by result.\n"
			   "# TYPE t_requests_total counter\n"
			   "t_requests_total{result=\"ok\"} 42\n"
			   "t_requests_total{result=\"error\"} 18446744073709551615\n");
	gw_metrics_free(reg);
}

static int fn_value(void *payload, double *v)
{
	*v = *(double *)payload;
	return 0;
}

static int fn_absent(void *payload, double *v)
{
	(void)payload;
	(void)v;
	return 1;
}

static void test_gauge_render(void **state)
{
	gw_metrics *reg;
	gw_metrics_gauge *gi, *gd, *gf, *gabs, *gnan, *ginf;
	gw_metrics_label two[2] = { { "a", "x" }, { "b", "y" } };
	double depth = 7;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_gauge_register(reg, "t_int", "Int gauge.", two, 2, &gi), 0);
	assert_int_equal(gw_metrics_gauge_register_double(reg, "t_double", "Double gauge.", NULL, 0, &gd), 0);
	assert_int_equal(gw_metrics_gauge_register_fn(reg, "t_fn", "Callback gauge.", NULL, 0, fn_value, &depth, &gf),
			 0);
	assert_int_equal(gw_metrics_gauge_register_fn(reg, "t_absent", "Absent.", NULL, 0, fn_absent, NULL, &gabs), 0);
	assert_int_equal(gw_metrics_gauge_register_double(reg, "t_nan", "NaN.", NULL, 0, &gnan), 0);
	assert_int_equal(gw_metrics_gauge_register_double(reg, "t_inf", "Inf.", NULL, 0, &ginf), 0);

	gw_metrics_gauge_set(gi, 10);
	gw_metrics_gauge_add(gi, -15);
	assert_int_equal(gw_metrics_gauge_value(gi), -5);
	gw_metrics_gauge_set_double(gd, 0.1);
	gw_metrics_gauge_add(gd, 2);
	gw_metrics_gauge_set_double(gnan, NAN);
	gw_metrics_gauge_set_double(ginf, -INFINITY);
	assert_render(reg, "# HELP t_int Int gauge.\n"
			   "# TYPE t_int gauge\n"
			   "t_int{a=\"x\",b=\"y\"} -5\n"
			   "# HELP t_double Double gauge.\n"
			   "# TYPE t_double gauge\n"
			   "t_double 2.1\n"
			   "# HELP t_fn Callback gauge.\n"
			   "# TYPE t_fn gauge\n"
			   "t_fn 7\n"
			   "# HELP t_absent Absent.\n"
			   "# TYPE t_absent gauge\n"
			   "# HELP t_nan NaN.\n"
			   "# TYPE t_nan gauge\n"
			   "t_nan NaN\n"
			   "# HELP t_inf Inf.\n"
			   "# TYPE t_inf gauge\n"
			   "t_inf -Inf\n");

	/* Numbers Prometheus parses, shortest round-trip form. */
	gw_metrics_gauge_set_double(gd, 1e21);
	depth = 123456789;
	gw_metrics_gauge_set_double(gnan, 0.005);
	gw_metrics_gauge_set_double(ginf, INFINITY);
	gw_metrics_gauge_set_fn(gi, fn_value, &depth); /* switch a plain gauge to a callback */
	gw_metrics_gauge_set_fn(gabs, NULL, NULL);     /* and a callback gauge back to its value */
	assert_render(reg, "# HELP t_int Int gauge.\n"
			   "# TYPE t_int gauge\n"
			   "t_int{a=\"x\",b=\"y\"} 123456789\n"
			   "# HELP t_double Double gauge.\n"
			   "# TYPE t_double gauge\n"
			   "t_double 1e+21\n"
			   "# HELP t_fn Callback gauge.\n"
			   "# TYPE t_fn gauge\n"
			   "t_fn 123456789\n"
			   "# HELP t_absent Absent.\n"
			   "# TYPE t_absent gauge\n"
			   "t_absent 0\n"
			   "# HELP t_nan NaN.\n"
			   "# TYPE t_nan gauge\n"
			   "t_nan 0.005\n"
			   "# HELP t_inf Inf.\n"
			   "# TYPE t_inf gauge\n"
			   "t_inf +Inf\n");

	gw_metrics_gauge_set_now(gd);
	assert_true(gw_metrics_gauge_value_double(gd) > 1.7e9);
	gw_metrics_free(reg);
}

static void test_histogram_render(void **state)
{
	static const double lag[] = GW_METRICS_ARCHIVE_LAG_BUCKETS;
	gw_metrics *reg;
	gw_metrics_histogram *h, *hl;
	gw_metrics_label l = { "repo_kind", "bare" };
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_histogram_register(reg, "t_lag_seconds", "Lag.", NULL, 0, lag,
						       sizeof(lag) / sizeof(lag[0]), &h),
			 0);
	assert_int_equal(gw_metrics_histogram_register(reg, "t_small", "Small.", &l, 1, (double[]){ 1, 2 }, 2, &hl),
			 0);
	/* 0.005 lands in le="0.005": bounds are inclusive. */
	gw_metrics_histogram_observe(h, 0.001);
	gw_metrics_histogram_observe(h, 0.005);
	gw_metrics_histogram_observe(h, 0.3);
	gw_metrics_histogram_observe(h, 0.3);
	gw_metrics_histogram_observe(h, 7);
	gw_metrics_histogram_observe(h, 100);
	gw_metrics_histogram_observe(h, NAN); /* ignored */
	assert_int_equal(gw_metrics_histogram_count(h), 6);
	gw_metrics_histogram_observe(hl, 1.5);
	assert_render(reg, "# HELP t_lag_seconds Lag.\n"
			   "# TYPE t_lag_seconds histogram\n"
			   "t_lag_seconds_bucket{le=\"0.005\"} 2\n"
			   "t_lag_seconds_bucket{le=\"0.01\"} 2\n"
			   "t_lag_seconds_bucket{le=\"0.025\"} 2\n"
			   "t_lag_seconds_bucket{le=\"0.05\"} 2\n"
			   "t_lag_seconds_bucket{le=\"0.1\"} 2\n"
			   "t_lag_seconds_bucket{le=\"0.25\"} 2\n"
			   "t_lag_seconds_bucket{le=\"0.5\"} 4\n"
			   "t_lag_seconds_bucket{le=\"1\"} 4\n"
			   "t_lag_seconds_bucket{le=\"2.5\"} 4\n"
			   "t_lag_seconds_bucket{le=\"5\"} 4\n"
			   "t_lag_seconds_bucket{le=\"10\"} 5\n"
			   "t_lag_seconds_bucket{le=\"+Inf\"} 6\n"
			   "t_lag_seconds_sum 107.606\n"
			   "t_lag_seconds_count 6\n"
			   "# HELP t_small Small.\n"
			   "# TYPE t_small histogram\n"
			   "t_small_bucket{repo_kind=\"bare\",le=\"1\"} 0\n"
			   "t_small_bucket{repo_kind=\"bare\",le=\"2\"} 1\n"
			   "t_small_bucket{repo_kind=\"bare\",le=\"+Inf\"} 1\n"
			   "t_small_sum{repo_kind=\"bare\"} 1.5\n"
			   "t_small_count{repo_kind=\"bare\"} 1\n");
	gw_metrics_free(reg);
}

static void test_escaping(void **state)
{
	gw_metrics *reg;
	gw_metrics_counter *c;
	gw_metrics_label l = { "path", "a\\b\"c\nd" };
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_counter_register(reg, "t_esc_total", "Help with \\ and \"quotes\"\nand a newline.",
						     &l, 1, &c),
			 0);
	gw_metrics_counter_inc(c);
	/* HELP escapes \ and newline only; label values also escape ". */
	assert_render(reg, "# HELP t_esc_total Help with \\\\ and \"quotes\"\\nand a newline.\n"
			   "# TYPE t_esc_total counter\n"
			   "t_esc_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
	gw_metrics_free(reg);
}

static void test_registration_errors(void **state)
{
	gw_metrics *reg;
	gw_metrics_counter *c;
	gw_metrics_gauge *g;
	gw_metrics_histogram *h;
	gw_metrics_label l = { "kind", "a" }, le = { "le", "1" }, bad = { "__x", "1" }, other = { "other", "a" };
	gw_metrics_label dup[2] = { { "k", "1" }, { "k", "2" } };
	char value[16];
	int i;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	tu_assert_err(gw_metrics_counter_register(reg, "9bad", "x", NULL, 0, &c), GW_EINVALID, "'9bad'");
	assert_null(c);
	tu_assert_err(gw_metrics_counter_register(reg, "bad-name", "x", NULL, 0, &c), GW_EINVALID, "'bad-name'");
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "", NULL, 0, &c), GW_EINVALID, "HELP");
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "x", &bad, 1, &c), GW_EINVALID, "'__x'");
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "x", dup, 2, &c), GW_EINVALID, "'k' given twice");

	assert_int_equal(gw_metrics_counter_register(reg, "t_total", "x", &l, 1, &c), 0);
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "x", &l, 1, &c), GW_EEXISTS, "'t_total'");
	tu_assert_err(gw_metrics_gauge_register(reg, "t_total", "x", &l, 1, &g), GW_EINVALID, "counter");
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "other help", &l, 1, &c), GW_EINVALID, "HELP");
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "x", &other, 1, &c), GW_EINVALID, "'kind'");
	tu_assert_err(gw_metrics_counter_register(reg, "t_total", "x", NULL, 0, &c), GW_EINVALID, "labels");

	/* Cardinality is bounded. */
	for (i = 1; i < GW_METRICS_MAX_SERIES; i++) {
		gw_metrics_label li = { "kind", value };
		snprintf(value, sizeof(value), "v%d", i);
		assert_int_equal(gw_metrics_counter_register(reg, "t_total", "x", &li, 1, &c), 0);
	}
	{
		gw_metrics_label li = { "kind", "one-too-many" };
		tu_assert_err(gw_metrics_counter_register(reg, "t_total", "x", &li, 1, &c), GW_EINVALID,
			      "no per-repository series");
	}

	tu_assert_err(gw_metrics_histogram_register(reg, "t_h", "x", &le, 1, (double[]){ 1 }, 1, &h), GW_EINVALID,
		      "'le'");
	tu_assert_err(gw_metrics_histogram_register(reg, "t_h", "x", NULL, 0, (double[]){ 1, 1 }, 2, &h), GW_EINVALID,
		      "increase");
	tu_assert_err(gw_metrics_histogram_register(reg, "t_h", "x", NULL, 0, (double[]){ 1, INFINITY }, 2, &h),
		      GW_EINVALID, "+Inf is implicit");
	tu_assert_err(gw_metrics_gauge_register_fn(reg, "t_g", "x", NULL, 0, NULL, NULL, &g), GW_EINVALID, "callback");
	gw_metrics_free(reg);
}

#define THREADS 4
#define ITERS 100000

struct worker {
	gw_metrics_counter *c;
	gw_metrics_gauge *g, *gd;
	gw_metrics_histogram *h;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	int i;
	for (i = 0; i < ITERS; i++) {
		gw_metrics_counter_add(w->c, 3);
		gw_metrics_gauge_add(w->g, (i & 1) ? 2 : -1);
		gw_metrics_gauge_add(w->gd, 1);
		gw_metrics_histogram_observe(w->h, (i % 3) ? 0.5 : 2.0);
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	gw_metrics *reg;
	struct worker w;
	pthread_t t[THREADS];
	char *text;
	size_t len;
	int i;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_counter_register(reg, "t_total", "x", NULL, 0, &w.c), 0);
	assert_int_equal(gw_metrics_gauge_register(reg, "t_gauge", "x", NULL, 0, &w.g), 0);
	assert_int_equal(gw_metrics_gauge_register_double(reg, "t_dgauge", "x", NULL, 0, &w.gd), 0);
	assert_int_equal(gw_metrics_histogram_register(reg, "t_h", "x", NULL, 0, (double[]){ 1 }, 1, &w.h), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w), 0);
	/* Scrapes (and a registration) while the workers run. */
	for (i = 0; i < 20; i++) {
		assert_int_equal(gw_metrics_render(reg, &text, &len), 0);
		free(text);
	}
	{
		gw_metrics_counter *late;
		assert_int_equal(gw_metrics_counter_register(reg, "t_late_total", "x", NULL, 0, &late), 0);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(gw_metrics_counter_value(w.c), 3ULL * THREADS * ITERS);
	assert_int_equal(gw_metrics_gauge_value(w.g), (int64_t)THREADS * (ITERS / 2));
	assert_true(gw_metrics_gauge_value_double(w.gd) == (double)THREADS * ITERS);
	assert_int_equal(gw_metrics_histogram_count(w.h), (uint64_t)THREADS * ITERS);
	assert_render(reg, "# HELP t_total x\n# TYPE t_total counter\nt_total 1200000\n"
			   "# HELP t_gauge x\n# TYPE t_gauge gauge\nt_gauge 200000\n"
			   "# HELP t_dgauge x\n# TYPE t_dgauge gauge\nt_dgauge 400000\n"
			   "# HELP t_h x\n# TYPE t_h histogram\n"
			   "t_h_bucket{le=\"1\"} 266664\n"
			   "t_h_bucket{le=\"+Inf\"} 400000\n"
			   "t_h_sum 400004\n"
			   "t_h_count 400000\n"
			   "# HELP t_late_total x\n# TYPE t_late_total counter\nt_late_total 0\n");
	gw_metrics_free(reg);
}

static void test_archiver_set(void **state)
{
	static const char *const want[] = {
		"# TYPE gitwal_segments_written_total counter\ngitwal_segments_written_total 1\n",
		"\ngitwal_segment_bytes_total 4096\n",
		"\ngitwal_full_backups_total 0\n",
		"\ngitwal_errors_total{kind=\"store\"} 0\n"
		"gitwal_errors_total{kind=\"repository\"} 0\n"
		"gitwal_errors_total{kind=\"watch\"} 1\n"
		"gitwal_errors_total{kind=\"conflict\"} 0\n"
		"gitwal_errors_total{kind=\"unsupported\"} 0\n",
		"# TYPE gitwal_archive_lag_seconds histogram\n",
		"\ngitwal_archive_lag_seconds_bucket{le=\"0.025\"} 1\n",
		"\ngitwal_archive_lag_seconds_count 1\n",
		"\ngitwal_spool_segments 0\n",
		"\ngitwal_spool_bytes 0\n",
		"\ngitwal_repositories 0\n",
		"\ngitwal_watches 12\n",
		"\ngitwal_last_segment_timestamp_seconds 0\n",
		"\ngitwal_gaps_total 0\n",
		"\ngitwal_inotify_overflows_total 0\n",
		/* The pipeline's series: healthy until a store request fails, nothing spooled or uploaded yet. */
		"# TYPE gitwal_store_healthy gauge\ngitwal_store_healthy 1\n",
		"# TYPE gitwal_last_spooled_timestamp_seconds gauge\n"
		"gitwal_last_spooled_timestamp_seconds 0\n",
		"# TYPE gitwal_spool_oldest_age_seconds gauge\ngitwal_spool_oldest_age_seconds 0\n",
		"# TYPE gitwal_upload_duration_seconds histogram\n",
		"\ngitwal_upload_duration_seconds_bucket{le=\"60\"} 0\n"
		"gitwal_upload_duration_seconds_bucket{le=\"+Inf\"} 0\n"
		"gitwal_upload_duration_seconds_sum 0\n"
		"gitwal_upload_duration_seconds_count 0\n",
	};
	gw_metrics *reg;
	gw_metrics_archiver a, again;
	char *text;
	size_t len, i;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_register_archiver(reg, &a), 0);
	gw_metrics_counter_inc(a.segments_written);
	gw_metrics_counter_add(a.segment_bytes, 4096);
	gw_metrics_counter_inc(a.errors[GW_METRICS_ERROR_WATCH]);
	gw_metrics_histogram_observe(a.archive_lag, 0.02);
	gw_metrics_gauge_set(a.watches, 12);
	assert_int_equal(gw_metrics_render(reg, &text, &len), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_non_null(strstr(text, want[i]));
	free(text);
	assert_string_equal(gw_metrics_error_kind_name(GW_METRICS_ERROR_REPOSITORY), "repository");
	assert_null(gw_metrics_error_kind_name(GW_METRICS_ERROR_KINDS));
	/* Twice is refused, and the handles are cleared. */
	tu_assert_err(gw_metrics_register_archiver(reg, &again), GW_EEXISTS, "gitwal_segments_written_total");
	assert_null(again.segments_written);
	gw_metrics_free(reg);
}

/* The value of the sample `name` (a whole line's first field) in a render; NAN when absent. */
static double sample(gw_metrics *reg, const char *name)
{
	char *text, *p;
	size_t len, n = strlen(name);
	double v = NAN;
	assert_int_equal(gw_metrics_render(reg, &text, &len), 0);
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ' ') {
			v = strtod(p + n + 1, NULL);
			break;
		}
	free(text);
	return v;
}

/* Spool one fake segment of rel at lsn (the upload copies bytes; it does not parse them). */
static void spool_one(gw_spool *sp, const char *rel, uint64_t lsn, int64_t changed_us)
{
	char *key = gw_layout_key(rel, lsn, GW_KEY_SEGMENT);
	gw_spool_item item;
	memset(&item, 0, sizeof(item));
	item.lsn = lsn;
	item.bytes = 5;
	item.updates = 1;
	item.changed_us = changed_us;
	item.time_us = item.spooled_us = gw_time_now_us() - 2000000; /* spooled two seconds ago */
	assert_int_equal(gw_store_put(gw_spool_store(sp), key, "GWSEG", 5), 0);
	assert_int_equal(gw_spool_add(sp, rel, &item), 0);
	free(key);
}

/*
 * The series the upload path keeps, as a scrape sees them: the spool's depth,
 * bytes and oldest age (at scrape time); while the store is away it is
 * unhealthy, store errors count, and the last time durable in the store does
 * not move; once it is back, the upload is timed, the lag observed, and the
 * last durable time set.
 */
static void test_spool_series(void **state)
{
	char dir[256], path[512], away[512];
	gw_metrics *reg;
	gw_metrics_archiver m;
	gw_spool *sp;
	gw_store *store;
	gw_index *index;
	gw_spool_event ev;
	int got_failed = 0, got_unhealthy = 0, got_uploaded = 0, got_healthy = 0;
	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_register_archiver(reg, &m), 0);
	snprintf(path, sizeof(path), "file://%s/store", dir);
	assert_int_equal(gw_store_open(&store, path), 0);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	assert_int_equal(gw_index_open(&index, path), 0);
	snprintf(path, sizeof(path), "%s/spool", dir);
	assert_int_equal(gw_spool_open(&sp, path, 1 << 20), 0);
	assert_int_equal(gw_spool_start(sp, store, index, 0, &m), 0);

	spool_one(sp, "a.git", 1, gw_time_now_us() - 3000000);
	spool_one(sp, "a.git", 2, 0);
	assert_true(sample(reg, "gitwal_spool_segments") == 2);
	assert_true(sample(reg, "gitwal_spool_bytes") == 10);
	assert_true(sample(reg, "gitwal_spool_oldest_age_seconds") >= 1.5);
	assert_true(sample(reg, "gitwal_store_healthy") == 1);

	/* The store's directory replaced by a file: it is away (root ignores permissions). */
	snprintf(path, sizeof(path), "%s/store", dir);
	snprintf(away, sizeof(away), "%s/store.away", dir);
	assert_int_equal(rename(path, away), 0);
	tu_write_file(path, "x", 1);
	assert_int_equal(gw_spool_flush(sp), 0);
	while (gw_spool_next_event(sp, &ev) == 1) {
		got_failed += ev.kind == GW_SPOOL_FAILED && ev.item.lsn == 1 && ev.code == GW_EIO && ev.retry_ms == 1000;
		got_unhealthy += ev.kind == GW_SPOOL_HEALTH && !ev.healthy && ev.message;
		gw_spool_event_dispose(&ev);
	}
	assert_int_equal(got_failed, 1); /* one failure ends the repository's turn: LSN 2 waits behind 1 */
	assert_int_equal(got_unhealthy, 1);
	assert_true(sample(reg, "gitwal_store_healthy") == 0);
	assert_true(sample(reg, "gitwal_spool_segments") == 2);
	assert_true(sample(reg, "gitwal_errors_total{kind=\"store\"}") == 1);
	assert_true(sample(reg, "gitwal_last_segment_timestamp_seconds") == 0);
	assert_true(sample(reg, "gitwal_upload_duration_seconds_count") == 0);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rename(away, path), 0);
	assert_int_equal(gw_spool_flush(sp), 2);
	while (gw_spool_next_event(sp, &ev) == 1) {
		got_uploaded += ev.kind == GW_SPOOL_UPLOADED && ev.item.lsn == (uint64_t)got_uploaded + 1;
		got_healthy += ev.kind == GW_SPOOL_HEALTH && ev.healthy;
		gw_spool_event_dispose(&ev);
	}
	assert_int_equal(got_uploaded, 2); /* in LSN order */
	assert_int_equal(got_healthy, 1);
	assert_true(sample(reg, "gitwal_store_healthy") == 1);
	assert_true(sample(reg, "gitwal_spool_segments") == 0);
	assert_true(sample(reg, "gitwal_spool_oldest_age_seconds") == 0);
	assert_true(sample(reg, "gitwal_segments_written_total") == 2);
	assert_true(sample(reg, "gitwal_upload_duration_seconds_count") == 2);
	assert_true(sample(reg, "gitwal_archive_lag_seconds_count") == 1); /* only the one with a change time */
	assert_true(fabs(sample(reg, "gitwal_last_segment_timestamp_seconds") - (double)gw_time_now_us() / 1e6) < 60);
	snprintf(path, sizeof(path), "%s/spool/repos/a.git/00000000000000000001.seg", dir);
	assert_int_equal(access(path, F_OK), -1); /* removed from the spool when its event was taken */

	gw_spool_free(sp); /* detaches the scrape-time gauges */
	assert_true(sample(reg, "gitwal_spool_segments") == 0);
	gw_index_free(index);
	gw_store_free(store);
	gw_metrics_free(reg);
	tu_rmrf(dir);
}

/* ---- HTTP */

struct http_reply {
	long status;
	char *body;
	size_t len;
	char content_type[128];
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct http_reply *r = arg;
	char *p = realloc(r->body, r->len + size * n + 1);
	if (!p)
		return 0;
	memcpy(p + r->len, ptr, size * n);
	r->len += size * n;
	p[r->len] = '\0';
	r->body = p;
	return size * n;
}

/* method NULL: GET. Returns the curl result; the reply is filled in on CURLE_OK. */
static CURLcode http(const char *url, const char *method, struct http_reply *r)
{
	CURL *c = curl_easy_init();
	CURLcode rc;
	char *ct = NULL;
	memset(r, 0, sizeof(*r));
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (method && !strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "some=body");
	else if (method && !strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
			snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
	} else {
		print_error("curl %s: %s\n", url, curl_easy_strerror(rc));
	}
	if (!r->body)
		r->body = calloc(1, 1);
	curl_easy_cleanup(c);
	return rc;
}

/* A request (method NULL: GET) for path on 127.0.0.1:port is answered with status. */
static void assert_status(uint16_t port, const char *path, const char *method, long status)
{
	struct http_reply r;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	assert_int_equal(http(url, method, &r), CURLE_OK);
	assert_int_equal(r.status, status);
	free(r.body);
}

static void test_serve_metrics(void **state)
{
	gw_metrics *reg;
	gw_metrics_archiver a;
	gw_metrics_server *srv;
	struct http_reply r;
	char url[128], *text;
	size_t len;
	uint16_t port;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	assert_int_equal(gw_metrics_register_archiver(reg, &a), 0);
	gw_metrics_counter_add(a.segments_written, 5);
	assert_int_equal(gw_metrics_serve(reg, "127.0.0.1:0", &srv), 0);
	port = gw_metrics_server_port(srv);
	assert_true(port != 0);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
	assert_int_equal(http(url, NULL, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/plain; version=0.0.4");
	assert_int_equal(gw_metrics_render(reg, &text, &len), 0);
	assert_int_equal(r.len, len);
	assert_string_equal(r.body, text);
	assert_non_null(strstr(r.body, "\ngitwal_segments_written_total 5\n"));
	free(text);
	free(r.body);

	/* A query string is not part of the path. */
	assert_status(port, "/metrics?x=1", NULL, 200);

	assert_int_equal(http(url, "HEAD", &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	free(r.body);

	assert_status(port, "/other", NULL, 404);
	assert_status(port, "/", NULL, 404);

	assert_status(port, "/metrics", "POST", 405);
	assert_status(port, "/metrics", "DELETE", 405);

	/* Still serving after the refusals. */
	assert_status(port, "/metrics", NULL, 200);

	gw_metrics_server_stop(srv);
	/* Stopped: nobody listens any more. */
	assert_int_not_equal(http(url, NULL, &r), CURLE_OK);
	free(r.body);
	gw_metrics_server_stop(NULL);
	gw_metrics_free(reg);
}

static void test_serve_localhost_and_ipv6(void **state)
{
	gw_metrics *reg;
	gw_metrics_server *srv, *srv2;
	struct http_reply r;
	char url[128], addr[64];
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);

	assert_int_equal(gw_metrics_serve(reg, "localhost:0", &srv), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", gw_metrics_server_port(srv));
	assert_int_equal(http(url, NULL, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0); /* empty registry */
	free(r.body);

	/* The port is taken: a clear error, not a crash. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", gw_metrics_server_port(srv));
	tu_assert_err(gw_metrics_serve(reg, addr, &srv2), GW_EIO, addr);
	tu_assert_msg_has("cannot listen");
	assert_null(srv2);
	gw_metrics_server_stop(srv);

	if (gw_metrics_serve(reg, "[::1]:0", &srv) < 0) {
		/* Containers without IPv6 loopback: the refusal must still say why. */
		tu_assert_msg_has("[::1]:0");
		gw_metrics_free(reg);
		skip();
	}
	snprintf(url, sizeof(url), "http://[::1]:%u/metrics", gw_metrics_server_port(srv));
	assert_int_equal(http(url, NULL, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	free(r.body);
	gw_metrics_server_stop(srv);
	gw_metrics_free(reg);
}

static void test_serve_refuses_non_loopback(void **state)
{
	gw_metrics *reg;
	gw_metrics_server *srv;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	tu_assert_err(gw_metrics_serve(reg, "0.0.0.0:9100", &srv), GW_EINVALID, "'0.0.0.0:9100'");
	tu_assert_msg_has("not a loopback address");
	assert_null(srv);
	tu_assert_err(gw_metrics_serve(reg, "192.0.2.7:9100", &srv), GW_EINVALID, "'192.0.2.7:9100'");
	tu_assert_err(gw_metrics_serve(reg, "[::]:9100", &srv), GW_EINVALID, "'[::]:9100': not a loopback");
	tu_assert_err(gw_metrics_serve(reg, "[2001:db8::1]:9100", &srv), GW_EINVALID, "not a loopback");
	/* 127.0.0.0/8 and IPv4-mapped loopback are loopback. */
	assert_int_equal(gw_metrics_serve(reg, "127.0.0.2:0", &srv), 0);
	gw_metrics_server_stop(srv);

	/* Allowed explicitly. */
	assert_int_equal(gw_metrics_serve_ext(reg, "0.0.0.0:0", GW_METRICS_SERVE_ALLOW_REMOTE, &srv), 0);
	assert_true(gw_metrics_server_port(srv) != 0);
	gw_metrics_server_stop(srv);
	gw_metrics_free(reg);
}

static void test_serve_bad_addresses(void **state)
{
	gw_metrics *reg;
	gw_metrics_server *srv;
	(void)state;
	assert_int_equal(gw_metrics_new(&reg), 0);
	tu_assert_err(gw_metrics_serve(reg, "nope", &srv), GW_EINVALID, "'nope': expected HOST:PORT");
	tu_assert_err(gw_metrics_serve(reg, "127.0.0.1:70000", &srv), GW_EINVALID, "'127.0.0.1:70000': invalid port");
	tu_assert_err(gw_metrics_serve(reg, "127.0.0.1:99999", &srv), GW_EINVALID, "'127.0.0.1:99999': invalid port");
	tu_assert_err(gw_metrics_serve(reg, "127.0.0.1:123456789012345678901234", &srv), GW_EINVALID,
		      "invalid port");
	tu_assert_err(gw_metrics_serve(reg, "127.0.0.1:", &srv), GW_EINVALID, "'127.0.0.1:': missing port");
	tu_assert_err(gw_metrics_serve(reg, "127.0.0.1:-1", &srv), GW_EINVALID, "invalid port");
	tu_assert_err(gw_metrics_serve(reg, "127.0.0.1:80x", &srv), GW_EINVALID, "invalid port");
	tu_assert_err(gw_metrics_serve(reg, ":9100", &srv), GW_EINVALID, "missing host");
	tu_assert_err(gw_metrics_serve(reg, "", &srv), GW_EINVALID, "empty");
	tu_assert_err(gw_metrics_serve(reg, NULL, &srv), GW_EINVALID, "empty");
	tu_assert_err(gw_metrics_serve(reg, "::1:9100", &srv), GW_EINVALID, "brackets");
	tu_assert_err(gw_metrics_serve(reg, "[::1:9100", &srv), GW_EINVALID, "missing ']'");
	tu_assert_err(gw_metrics_serve(reg, "[::1]9100", &srv), GW_EINVALID, "expected [IPv6]:PORT");
	tu_assert_err(gw_metrics_serve(reg, "[nope]:9100", &srv), GW_EINVALID, "'nope' is not an IPv6 address");
	tu_assert_err(gw_metrics_serve(reg, "example.com:9100", &srv), GW_EINVALID,
		      "host 'example.com' is not an IP address or localhost");
	tu_assert_err(gw_metrics_serve(reg, "127.1:9100", &srv), GW_EINVALID, "not an IP address");
	assert_null(srv);
	gw_metrics_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_render),
		cmocka_unit_test(test_gauge_render),
		cmocka_unit_test(test_histogram_render),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_registration_errors),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_archiver_set),
		cmocka_unit_test(test_spool_series),
		cmocka_unit_test(test_serve_metrics),
		cmocka_unit_test(test_serve_localhost_and_ipv6),
		cmocka_unit_test(test_serve_refuses_non_loopback),
		cmocka_unit_test(test_serve_bad_addresses),
	};
	int rc;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = tu_run_tests(tests);
	curl_global_cleanup();
	return rc;
}
