/*
 * Internals of the s3:// driver, shared by its files and by its tests:
 *   s3_config.c  the store URL and the credentials
 *   s3_http.c    signed requests through libcurl, retries, error messages
 *   s3_xml.c     the XML answers, read with libxml2
 *   s3_xfer.c    the store's transfer threads and buffer budget (parallel parts and ranges)
 *   s3.c         the driver itself (write-once objects, multipart, listing)
 * Nothing here is public API: include/gitwal/store.h is.
 */
#ifndef GITWAL_STORE_S3_H
#define GITWAL_STORE_S3_H

#include "store/driver.h"
#include "util/owner.h"

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

#include <curl/curl.h>

#define S3_LOCK_NONE 0
#define S3_LOCK_GOVERNANCE 1
#define S3_LOCK_COMPLIANCE 2

#define S3_DEFAULT_RETRIES 5
#define S3_MAX_RETRIES 20
#define S3_POOL_MAX 32 /* idle easy handles (each with its open connection) kept per store */
/*
 * Parallel transfers (README, "S3 stores"; DESIGN.md 12.2). parallel= parts
 * of one object upload at once, and as many ranges of one object download
 * at once, on the store's transfer threads (at most S3_WORKERS_MAX, shared
 * by every writer and reader of the store). Their buffers come from a
 * budget of S3_BUFFER_BUDGET per store; each writer and reader always has
 * its first buffers (one to fill and one in flight) so it makes progress.
 */
#define S3_PART_SIZE (8u * 1024 * 1024)  /* a multipart upload's parts (S3 wants >= 5 MiB but the last) */
#define S3_READ_CHUNK (4u * 1024 * 1024) /* a reader's ranged GETs */
#define S3_DEFAULT_PARALLEL 2
#define S3_MAX_PARALLEL 16
#define S3_WORKERS_MAX 16
#define S3_BUFFER_BUDGET (64u * 1024 * 1024)
#define S3_DEFAULT_UPLOAD_MAX_AGE (24 * 3600)
/*
 * Time limits (README, "S3 stores"; DESIGN.md 12.1). A request on the local
 * radosgw is answered in milliseconds (an 8 MiB part in under 0.1 s on a
 * loaded 2-core host), AWS's p99 is well under a second: the limits are tens
 * of times that, and still tell a stalled store within seconds.
 */
#define S3_DEFAULT_CONNECT_TIMEOUT_MS 5000     /* two SYN retransmissions (1 s, 2 s) and a TLS handshake */
#define S3_DEFAULT_FIRST_BYTE_TIMEOUT_MS 10000 /* from the last byte sent to the answer's first */
#define S3_DEFAULT_STALL_TIMEOUT_MS 5000       /* no byte moved while sending or receiving */
#define S3_DEFAULT_DEADLINE_MS 60000           /* a request with its retries, plus its bytes at S3_DEADLINE_RATE */
#define S3_DEADLINE_RATE (256 * 1024)          /* bytes per second a request's deadline allows for its body */

typedef struct s3_config {
	char *bucket;
	char *prefix;   /* "" or "a/b" (no leading or trailing '/') */
	char *endpoint; /* scheme://host[:port], no trailing '/' */
	char *region;
	int path_style;
	int lock_mode;          /* S3_LOCK_* */
	int64_t retain_seconds; /* with lock_mode */
	char *ca_file;
	int retries;
	int64_t upload_max_age; /* seconds: an incomplete multipart upload this old is a dead writer's */
	int64_t connect_timeout_ms;    /* connecting (TCP and TLS) */
	int64_t first_byte_timeout_ms; /* waiting for the answer once the request is sent */
	int64_t stall_timeout_ms;      /* no byte moving while sending or receiving */
	int64_t deadline_ms;           /* a request with all its attempts, before its bytes' share */
	int parallel;                  /* parts (ranges) of one object in flight at once */
} s3_config;

typedef struct s3_credentials {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL without one */
	char *userpwd;       /* "KEY:SECRET" for CURLOPT_USERPWD */
} s3_credentials;

/* One piece of work for the store's transfer threads (s3_xfer.c): run() is called once, on one of them. */
typedef struct s3_job {
	void (*run)(struct s3_job *job);
	struct s3_job *next;
} s3_job;

/* Requests by method, for tests and the trace (s3_stats_get). */
enum { S3_M_GET, S3_M_HEAD, S3_M_PUT, S3_M_POST, S3_M_DELETE, S3_M_OTHER, S3_M_COUNT };
typedef struct s3_stats {
	uint64_t requests[S3_M_COUNT]; /* requests run (each with all its attempts) */
	uint64_t attempts;             /* attempts sent */
	uint64_t connections;          /* connections opened (the others reused one of the store's) */
} s3_stats;

typedef struct gw_s3 {
	s3_config cfg;
	s3_credentials cred;
	char *sigv4;    /* "aws:amz:REGION:s3" */
	char *base_url; /* endpoint with the bucket: path style or virtual host */
	const char *url; /* the store's redacted URL, for messages */
	int versioned;   /* the bucket keeps versions (Enabled or Suspended) */
	int probed;      /* versioned (and Object Lock) are known; else probe before writing (under probe_lock) */
	pthread_mutex_t probe_lock;
	pthread_mutex_t pool_lock;
	struct s3_handle *pool[S3_POOL_MAX];
	size_t pool_len;
	/* What every handle of the store shares: DNS answers and TLS sessions (each under its lock). */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	s3_stats stats; /* atomics */
	int trace;      /* GITWAL_S3_TRACE: one line per attempt on stderr */
	/* Transfer threads and the buffer budget (s3_xfer.c; under xfer_lock). */
	pthread_mutex_t xfer_lock;
	pthread_cond_t xfer_cond;
	s3_job *jobs, *jobs_tail;
	pthread_t workers[S3_WORKERS_MAX];
	size_t nworkers, idle_workers;
	int xfer_stop;
	size_t buffered;      /* bytes of buffers taken from the budget */
	size_t buffered_peak; /* the most it held at once (for tests) */
	/* This store's multipart uploads in progress: never taken for a dead writer's (under uploads_lock). */
	pthread_mutex_t uploads_lock;
	char **uploads;
	size_t nuploads, uploads_cap;
	gw_owner_cleared cleared; /* prefixes whose stale uploads this store aborted */
	/* gw_store_health_get: what the requests found (under health_lock). */
	pthread_mutex_t health_lock;
	gw_store_health health;
} gw_s3;

/* A growable byte buffer for request and response bodies. */
typedef struct s3_buf {
	unsigned char *data;
	size_t len, cap;
	size_t max; /* refuse to grow past this (0: no limit) */
} s3_buf;

int s3_buf_reserve(s3_buf *b, size_t cap);
int s3_buf_append(s3_buf *b, const void *data, size_t len);
void s3_buf_dispose(s3_buf *b);

/* One query parameter; s3_query_build sorts them as SigV4 wants. */
typedef struct s3_param {
	const char *name;
	const char *value; /* NULL means empty: "name=" */
} s3_param;

/* "a=1&b=%2F..." sorted by name, values percent-encoded; malloc'd. NULL on no memory. */
char *s3_query_build(s3_param *params, size_t n);
/* Append `s` percent-encoded (RFC 3986 unreserved kept; '/' kept when keep_slash). */
int s3_uri_encode(s3_buf *out, const char *s, int keep_slash);

/* One S3 request. Fill the inputs; s3_request_run fills the outputs. */
typedef struct s3_request {
	const char *method;          /* GET, HEAD, PUT, POST, DELETE */
	const char *key;             /* a store key (the prefix is added), or NULL for the bucket */
	const char *object;          /* or an absolute object name (no prefix added); NULL for the bucket */
	const char *query;           /* canonical query (s3_query_build), or NULL */
	const char *headers[12];     /* extra "Name: value" headers, NULL-terminated */
	const void *body;            /* uploads: body and length (a length even when 0) */
	size_t body_len;
	int upload;                  /* send body (PUT and POST always do) */
	int unsigned_payload;        /* object data: sign UNSIGNED-PAYLOAD, the signed Content-MD5 guards it */
	const unsigned char *md5;    /* the body's MD5 when the caller hashed it as the bytes came, or NULL */
	s3_buf *response;            /* where the response body goes (NULL: a small internal buffer) */
	int ok_status[4];            /* statuses besides 2xx the caller handles itself (e.g. 404, 412) */
	uint64_t expect_bytes;       /* the answer's body when large (a ranged GET), for the deadline */
	const int *cancel;           /* when it becomes non-zero (read atomically), the request stops: GW_ECHANGED */
	/*
	 * Requests that create an object (a PUT of one, CompleteMultipartUpload)
	 * are not sent twice blindly, neither by the retries here nor by libcurl
	 * resending on a reused connection: in a versioned bucket a second send
	 * would make a second version. After an attempt whose answer was lost (it
	 * may have reached the server: a timeout, a reset, HTTP 5xx), landed()
	 * says whether the object is there: 1 (the request counts as answered
	 * 200, `landed` is set), 0 (send it again, or give up when out of
	 * attempts), or a negative GW_E* (GW_EEXISTS: another object is there).
	 */
	int (*landed_check)(gw_s3 *s3, struct s3_request *req, void *payload);
	void *landed_payload;

	/* outputs */
	long status;
	unsigned attempts;
	uint64_t content_length;
	int64_t last_modified;
	int64_t retain_until;
	char etag[80];
	char version_id[128];
	char error_code[64]; /* the XML <Code> of an error answer */
	int landed;          /* landed_check found the object after a lost answer */
	s3_buf own_response;
} s3_request;

void s3_request_dispose(s3_request *req);

/*
 * Run a request with retries (exponential backoff with jitter) on connection
 * errors, timeouts, 5xx and 429, within the store's time limits (each
 * attempt: connect_timeout, stall_timeout, first_byte_timeout; all of them:
 * the deadline). Returns 0 when the answer is 2xx or one of ok_status, else
 * a negative GW_E* with a message naming store and key. Every attempt
 * updates the store's health.
 */
int s3_request_run(gw_s3 *s3, s3_request *req);
/* gw_store_health_get for an s3:// store. */
void s3_health_get(gw_s3 *s3, gw_store_health *out);
/* The store's request counts so far. */
void s3_stats_get(gw_s3 *s3, s3_stats *out);

/*
 * Transfer threads (s3_xfer.c). s3_xfer_submit queues a job; a thread runs
 * it (one is started when none is idle, up to S3_WORKERS_MAX; they live
 * until the store is freed). A job signals its own completion.
 */
int s3_xfer_init(gw_s3 *s3);
void s3_xfer_submit(gw_s3 *s3, s3_job *job);
/* Stop the threads once the queue is empty (every writer and reader is freed by then). */
void s3_xfer_dispose(gw_s3 *s3);
/* Take bytes from the store's buffer budget: 1 when there was room, else 0; force: take them anyway. */
int s3_budget_take(gw_s3 *s3, size_t bytes, int force);
void s3_budget_give(gw_s3 *s3, size_t bytes);

/* Config and credentials (s3_config.c). */
int s3_config_parse(s3_config *cfg, const char *rest);
void s3_config_dispose(s3_config *cfg);
/* The canonical, secret-free URL of a parsed config; malloc'd. */
char *s3_config_url(const s3_config *cfg);
int s3_credentials_load(s3_credentials *cred);
void s3_credentials_dispose(s3_credentials *cred);

/* Set up the connection side of gw_s3 from a parsed config; no request is made. */
int s3_connect(gw_s3 *s3);
void s3_disconnect(gw_s3 *s3);

/* Dates: "2026-12-01T00:00:00Z" (ISO 8601, fraction allowed) and RFC 1123 ("Tue, 01 Dec 2026 ..."). */
int64_t s3_parse_iso8601(const char *s);
int64_t s3_parse_http_date(const char *s);
void s3_format_iso8601(char *out, size_t size, int64_t t);

/* XML answers (s3_xml.c). Each returns 0, or GW_ECORRUPT with a message when the XML is malformed. */
/* The text of the first element named `name` anywhere in the document; *out NULL when absent. */
int s3_xml_text(const unsigned char *xml, size_t len, const char *name, char **out);
typedef int (*s3_xml_object_cb)(const char *key, uint64_t size, void *payload);
/* ListObjectsV2: each <Contents>, then whether it is truncated and the next token. */
int s3_xml_list_objects(const unsigned char *xml, size_t len, s3_xml_object_cb cb, void *payload, int *truncated,
			char **next_token);
typedef int (*s3_xml_version_cb)(const char *key, const char *version_id, int delete_marker, void *payload);
/* ListObjectVersions: each <Version> and <DeleteMarker>, and the next markers when truncated. */
int s3_xml_list_versions(const unsigned char *xml, size_t len, s3_xml_version_cb cb, void *payload, int *truncated,
			 char **next_key, char **next_version);

typedef int (*s3_xml_upload_cb)(const char *key, const char *upload_id, int64_t initiated, void *payload);
/* ListMultipartUploads: each <Upload> (Initiated in seconds, 0 when absent), and the next markers when truncated. */
int s3_xml_list_uploads(const unsigned char *xml, size_t len, s3_xml_upload_cb cb, void *payload, int *truncated,
			char **next_key, char **next_upload);
typedef int (*s3_xml_delete_error_cb)(const char *key, const char *version_id, const char *code, const char *message,
				      void *payload);
/* DeleteObjects: each <Error> of the <DeleteResult> (version_id NULL when absent); GW_ECORRUPT for another root. */
int s3_xml_delete_result(const unsigned char *xml, size_t len, s3_xml_delete_error_cb cb, void *payload);
/* ListParts: the bytes of the parts listed (added to *bytes), and the next part-number marker when truncated. */
int s3_xml_list_parts(const unsigned char *xml, size_t len, uint64_t *bytes, int *truncated, char **next_marker);

/*
 * For tests and tools: create the bucket a store URL names (with Object Lock,
 * or with versioning only), without opening the store.
 */
#define GW_S3_BUCKET_PLAIN 0
#define GW_S3_BUCKET_VERSIONED 1
#define GW_S3_BUCKET_LOCK 2
int gw_s3_bucket_create(const char *url, int kind);
/* The driver state of an open s3:// store, for tests that send their own requests. */
gw_s3 *gw_s3_from_store(gw_store *store);

#endif
