/*
 * Metrics of the always-on archiver: a small registry of counters, gauges and
 * histograms, rendered in the Prometheus text exposition format (0.0.4) and
 * served on a loopback HTTP endpoint (libmicrohttpd).
 *
 * Why this shape:
 *  - Updates come from worker threads on the hot path (every segment), so
 *    they are lock-free atomics on a handle obtained once at registration;
 *    nothing is looked up by name at update time.
 *  - Label values are given at registration, never at update time, and the
 *    number of series per metric is capped (GW_METRICS_MAX_SERIES): a scrape
 *    stays small and no code path can create one series per repository.
 *  - Values that are cheaper to compute than to maintain (spool depth, number
 *    of watches) can be computed at scrape time by a callback.
 *
 * Registration takes a mutex and may happen at any time, also while serving.
 * Handles belong to the registry and stay valid until gw_metrics_free(). Every
 * update function accepts a NULL handle and does nothing, so code paths can
 * run without a registry (tests, one-shot commands).
 */
#ifndef GITWAL_METRICS_H
#define GITWAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_metrics gw_metrics;
typedef struct gw_metrics_counter gw_metrics_counter;
typedef struct gw_metrics_gauge gw_metrics_gauge;
typedef struct gw_metrics_histogram gw_metrics_histogram;
typedef struct gw_metrics_server gw_metrics_server;

/* Bounds that keep a scrape small (see above). */
#define GW_METRICS_MAX_LABELS 4  /* label pairs per series */
#define GW_METRICS_MAX_SERIES 32 /* label sets per metric name */
#define GW_METRICS_MAX_BUCKETS 64 /* finite histogram buckets (+Inf is implicit) */

/* One label pair, e.g. { "result", "ok" }. */
typedef struct gw_metrics_label {
	const char *name;
	const char *value;
} gw_metrics_label;

int gw_metrics_new(gw_metrics **out);
/* Frees the registry and every handle. Stop any server using it first. */
void gw_metrics_free(gw_metrics *reg);

/*
 * Registration. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__"); `help` is required.
 * Registering a name again with other label values adds a series to the same
 * metric (same type, HELP and label names required); registering the same
 * label values twice is GW_EEXISTS. labels may be NULL when nlabels is 0.
 */
int gw_metrics_counter_register(gw_metrics *reg, const char *name, const char *help,
				const gw_metrics_label *labels, size_t nlabels, gw_metrics_counter **out);
/* An integer gauge (counts, bytes). */
int gw_metrics_gauge_register(gw_metrics *reg, const char *name, const char *help,
			      const gw_metrics_label *labels, size_t nlabels, gw_metrics_gauge **out);
/* A floating-point gauge (timestamps, ratios). */
int gw_metrics_gauge_register_double(gw_metrics *reg, const char *name, const char *help,
				     const gw_metrics_label *labels, size_t nlabels, gw_metrics_gauge **out);
/*
 * A histogram with `nbounds` finite upper bounds, strictly increasing; the
 * +Inf bucket is added implicitly. The label name "le" is reserved.
 */
int gw_metrics_histogram_register(gw_metrics *reg, const char *name, const char *help,
				  const gw_metrics_label *labels, size_t nlabels,
				  const double *bounds, size_t nbounds, gw_metrics_histogram **out);

/*
 * A gauge computed at scrape time: fn stores the value and returns 0, or
 * returns non-zero to leave the sample out of this scrape (e.g. "no segment
 * written yet"). fn runs on the HTTP thread with the registry lock held: it
 * must be quick, thread-safe, and must not register metrics or render.
 */
typedef int (*gw_metrics_gauge_fn)(void *payload, double *value);

int gw_metrics_gauge_register_fn(gw_metrics *reg, const char *name, const char *help,
				 const gw_metrics_label *labels, size_t nlabels,
				 gw_metrics_gauge_fn fn, void *payload, gw_metrics_gauge **out);
/*
 * Attach (or, with fn NULL, detach) a scrape-time callback to an existing
 * gauge, e.g. one from gw_metrics_register_archiver(). While attached the
 * stored value is ignored. After this returns, no scrape uses the old
 * callback any more, so its payload may be freed once it is detached.
 */
void gw_metrics_gauge_set_fn(gw_metrics_gauge *g, gw_metrics_gauge_fn fn, void *payload);

/* Updates: cheap, lock-free, safe from any thread; NULL handles are ignored. */
void gw_metrics_counter_add(gw_metrics_counter *c, uint64_t n);
static inline void gw_metrics_counter_inc(gw_metrics_counter *c)
{
	gw_metrics_counter_add(c, 1);
}
uint64_t gw_metrics_counter_value(const gw_metrics_counter *c);

/* On a double gauge the integer is converted, and the other way round. */
void gw_metrics_gauge_set(gw_metrics_gauge *g, int64_t v);
void gw_metrics_gauge_add(gw_metrics_gauge *g, int64_t delta);
void gw_metrics_gauge_set_double(gw_metrics_gauge *g, double v);
/* Set to the current wall-clock time in seconds since the epoch. */
void gw_metrics_gauge_set_now(gw_metrics_gauge *g);
int64_t gw_metrics_gauge_value(const gw_metrics_gauge *g);
double gw_metrics_gauge_value_double(const gw_metrics_gauge *g);

void gw_metrics_histogram_observe(gw_metrics_histogram *h, double v);
uint64_t gw_metrics_histogram_count(const gw_metrics_histogram *h);

/*
 * Render every metric in the Prometheus text format 0.0.4 (registration
 * order; one # HELP and # TYPE per name, then its series). *out is malloc'd
 * and NUL-terminated; *len excludes the NUL. Histogram buckets are
 * cumulative and _count always equals the +Inf bucket.
 */
int gw_metrics_render(gw_metrics *reg, char **out, size_t *len);

/*
 * Serve GET (and HEAD) /metrics over HTTP on addr: "127.0.0.1:PORT",
 * "[::1]:PORT" or "localhost:PORT" (which means 127.0.0.1, without asking a
 * resolver). Port 0 picks a free port; see gw_metrics_server_port(). Any
 * other address (0.0.0.0, a LAN address) is refused unless flags has
 * GW_METRICS_SERVE_ALLOW_REMOTE: the endpoint has no authentication. Other
 * paths get 404, other methods 405. The registry must outlive the server.
 */
enum {
	GW_METRICS_SERVE_ALLOW_REMOTE = 1u << 0,
};
#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

int gw_metrics_serve(gw_metrics *reg, const char *addr, gw_metrics_server **out);
int gw_metrics_serve_ext(gw_metrics *reg, const char *addr, unsigned flags, gw_metrics_server **out);
uint16_t gw_metrics_server_port(const gw_metrics_server *srv);
/* Stops the HTTP thread, closes every connection and frees; NULL is ignored. */
void gw_metrics_server_stop(gw_metrics_server *srv);

/*
 * The archiver's standard metrics. Names are part of the user interface
 * (dashboards and alerts use them): change them only with a note in the
 * release notes. See DESIGN.md 10.7 for their meaning.
 */
#define GW_METRIC_SEGMENTS_WRITTEN "gitwal_segments_written_total"
#define GW_METRIC_SEGMENT_BYTES "gitwal_segment_bytes_total"
#define GW_METRIC_FULL_BACKUPS "gitwal_full_backups_total"
#define GW_METRIC_ERRORS "gitwal_errors_total"
#define GW_METRIC_ARCHIVE_LAG "gitwal_archive_lag_seconds"
#define GW_METRIC_SPOOL_SEGMENTS "gitwal_spool_segments"
#define GW_METRIC_SPOOL_BYTES "gitwal_spool_bytes"
#define GW_METRIC_REPOSITORIES "gitwal_repositories"
#define GW_METRIC_WATCHES "gitwal_watches"
#define GW_METRIC_LAST_SEGMENT_TIMESTAMP "gitwal_last_segment_timestamp_seconds"
#define GW_METRIC_LAST_SPOOLED_TIMESTAMP "gitwal_last_spooled_timestamp_seconds"
#define GW_METRIC_SPOOL_OLDEST_AGE "gitwal_spool_oldest_age_seconds"
#define GW_METRIC_STORE_HEALTHY "gitwal_store_healthy"
#define GW_METRIC_UPLOAD_DURATION "gitwal_upload_duration_seconds"
#define GW_METRIC_GAPS "gitwal_gaps_total"
#define GW_METRIC_INOTIFY_OVERFLOWS "gitwal_inotify_overflows_total"

/* The values of the `kind` label of gitwal_errors_total. */
typedef enum {
	GW_METRICS_ERROR_STORE = 0,      /* kind="store" */
	GW_METRICS_ERROR_REPOSITORY = 1, /* kind="repository" */
	GW_METRICS_ERROR_WATCH = 2,      /* kind="watch" */
	GW_METRICS_ERROR_CONFLICT = 3,   /* kind="conflict": another writer took an LSN this archiver needed */
	GW_METRICS_ERROR_UNSUPPORTED = 4, /* kind="unsupported": a repository gitwal refuses (shallow, reftable...) */
	GW_METRICS_ERROR_KINDS
} gw_metrics_error_kind;

/* Bucket bounds of gitwal_archive_lag_seconds (+Inf is implicit). */
#define GW_METRICS_ARCHIVE_LAG_BUCKETS { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
/* Bucket bounds of gitwal_upload_duration_seconds: up to a minute (a slow or retried S3 upload). */
#define GW_METRICS_UPLOAD_BUCKETS { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

typedef struct gw_metrics_archiver {
	gw_metrics_counter *segments_written;
	gw_metrics_counter *segment_bytes;
	gw_metrics_counter *full_backups;
	gw_metrics_counter *errors[GW_METRICS_ERROR_KINDS]; /* indexed by gw_metrics_error_kind */
	gw_metrics_histogram *archive_lag;
	gw_metrics_gauge *spool_segments;
	gw_metrics_gauge *spool_bytes;
	gw_metrics_gauge *repositories;
	gw_metrics_gauge *watches;
	gw_metrics_gauge *last_segment_timestamp; /* a double gauge: durable in the store */
	gw_metrics_counter *gaps;
	gw_metrics_counter *inotify_overflows;
	gw_metrics_gauge *last_spooled_timestamp; /* a double gauge: durable in the local spool */
	gw_metrics_gauge *spool_oldest_age;       /* a double gauge */
	gw_metrics_gauge *store_healthy;          /* 1 or 0 */
	gw_metrics_histogram *upload_seconds;
} gw_metrics_archiver;

/*
 * Register the standard set and fill *handles. Gauges may then be switched
 * to scrape-time callbacks with gw_metrics_gauge_set_fn(). On failure
 * *handles is zeroed (all updates become no-ops).
 */
int gw_metrics_register_archiver(gw_metrics *reg, gw_metrics_archiver *handles);

/* Name of an error kind ("store", ...), or NULL when out of range. */
const char *gw_metrics_error_kind_name(gw_metrics_error_kind kind);

#endif
