/*
 * Signed S3 requests over libcurl, with retries and clear errors.
 *
 * Signing is libcurl's own (CURLOPT_AWS_SIGV4). Three things libcurl 7.88
 * leaves to us (see the project notes on S3): it signs whatever
 * x-amz-content-sha256 we send, so every request sends the real SHA-256 of its
 * body; it does not canonicalize the query, so s3_query_build sorts and
 * encodes it; and it would stream a body of unknown length chunked, which S3
 * refuses, so every upload here is a buffer with a length.
 *
 * Easy handles are pooled per store and each request takes one for its
 * duration, so any number of threads may share a store. A handle keeps its
 * connection open between requests, so the pool is the store's connection
 * pool: requests one after another reuse one connection, and as many stay
 * open as requests ran at once (up to S3_POOL_MAX). DNS answers and TLS
 * sessions are shared by every handle of the store (a curl share, under
 * locks), so a new connection skips a full TLS handshake. The connection
 * cache itself is not put in the share: libcurl does not support sharing
 * it between threads that transfer at once.
 *
 * Time limits (DESIGN.md 12.1): libcurl's connect timeout, and a watchdog of
 * our own in the progress callback for the rest, because libcurl's
 * low-speed limit cannot tell sending, waiting for the answer and receiving
 * apart. Every attempt reports to the store's health.
 */
#include "store/s3.h"
#include "gitwal/error.h"
#include "gitwal/time.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <libxml/parser.h>
#include <openssl/evp.h>

#define S3_BACKOFF_BASE_MS 200
#define S3_BACKOFF_CAP_MS 8000
#define S3_SMALL_RESPONSE_MAX (16u * 1024 * 1024)

static const char EMPTY_SHA256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* Buffers. */

int s3_buf_reserve(s3_buf *b, size_t cap)
{
	unsigned char *nd;
	if (cap <= b->cap)
		return 0;
	if (!(nd = realloc(b->data, cap)))
		return gw_error_set(GW_ERROR, "out of memory");
	b->data = nd;
	b->cap = cap;
	return 0;
}

int s3_buf_append(s3_buf *b, const void *data, size_t len)
{
	if (b->max && b->len + len > b->max)
		return GW_ERROR;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		if (b->max && cap > b->max)
			cap = b->max;
		if (s3_buf_reserve(b, cap) < 0)
			return GW_ERROR;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void s3_buf_dispose(s3_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Encoding. */

int s3_uri_encode(s3_buf *out, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[3];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
			if (s3_buf_append(out, s, 1) < 0)
				return GW_ERROR;
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		if (s3_buf_append(out, esc, 3) < 0)
			return GW_ERROR;
	}
	return 0;
}

static int param_cmp(const void *a, const void *b)
{
	return strcmp(((const s3_param *)a)->name, ((const s3_param *)b)->name);
}

char *s3_query_build(s3_param *params, size_t n)
{
	s3_buf b = {0};
	size_t i;
	qsort(params, n, sizeof(*params), param_cmp);
	for (i = 0; i < n; i++) {
		if ((i && s3_buf_append(&b, "&", 1) < 0) || s3_uri_encode(&b, params[i].name, 0) < 0 ||
		    s3_buf_append(&b, "=", 1) < 0 || (params[i].value && s3_uri_encode(&b, params[i].value, 0) < 0)) {
			s3_buf_dispose(&b);
			return NULL;
		}
	}
	if (s3_buf_append(&b, "", 1) < 0) {
		s3_buf_dispose(&b);
		return NULL;
	}
	return (char *)b.data;
}

/* Dates. */

int64_t s3_parse_iso8601(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

int64_t s3_parse_http_date(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

void s3_format_iso8601(char *out, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Connection set-up. */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
}

/* A pooled easy handle, and the socket of the connection it keeps (see ack_now). */
typedef struct s3_handle {
	CURL *curl;
	curl_socket_t fd; /* CURL_SOCKET_BAD when not known */
} s3_handle;

static void handle_free(s3_handle *sh)
{
	if (sh) {
		curl_easy_cleanup(sh->curl);
		free(sh);
	}
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *payload)
{
	gw_s3 *s3 = payload;
	(void)h;
	(void)access;
	pthread_mutex_lock(&s3->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *payload)
{
	gw_s3 *s3 = payload;
	(void)h;
	pthread_mutex_unlock(&s3->share_locks[data]);
}

int s3_connect(gw_s3 *s3)
{
	const s3_config *cfg = &s3->cfg;
	const char *trace = getenv("GITWAL_S3_TRACE");
	size_t n;

	pthread_mutex_init(&s3->pool_lock, NULL);
	pthread_mutex_init(&s3->health_lock, NULL);
	for (n = 0; n < CURL_LOCK_DATA_LAST; n++)
		pthread_mutex_init(&s3->share_locks[n], NULL);
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return gw_error_set(GW_ERROR, "cannot initialise libcurl: %s", curl_easy_strerror(global_rc));
	n = strlen(cfg->region) + 16;
	if (!(s3->sigv4 = malloc(n)))
		return gw_error_set(GW_ERROR, "out of memory");
	snprintf(s3->sigv4, n, "aws:amz:%s:s3", cfg->region);
	n = strlen(cfg->endpoint) + strlen(cfg->bucket) + 4;
	if (!(s3->base_url = malloc(n)))
		return gw_error_set(GW_ERROR, "out of memory");
	if (cfg->path_style) {
		snprintf(s3->base_url, n, "%s/%s", cfg->endpoint, cfg->bucket);
	} else {
		/* Virtual host: the bucket goes in front of the host name. */
		const char *host = strstr(cfg->endpoint, "://") + 3;
		snprintf(s3->base_url, n, "%.*s%s.%s", (int)(host - cfg->endpoint), cfg->endpoint, cfg->bucket, host);
	}
	memset(&s3->health, 0, sizeof(s3->health));
	s3->health.healthy = 1;
	s3->trace = trace && *trace && strcmp(trace, "0");
	if (!(s3->share = curl_share_init()) ||
	    curl_share_setopt(s3->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(s3->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(s3->share, CURLSHOPT_USERDATA, s3) != CURLSHE_OK ||
	    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		return gw_error_set(GW_ERROR, "cannot set up a libcurl share");
	return 0;
}

void s3_disconnect(gw_s3 *s3)
{
	size_t i;
	for (i = 0; i < s3->pool_len; i++)
		handle_free(s3->pool[i]);
	s3->pool_len = 0;
	if (s3->trace) {
		s3_stats st;
		s3_stats_get(s3, &st);
		fprintf(stderr,
			"s3_trace stats requests=%llu get=%llu head=%llu put=%llu post=%llu delete=%llu attempts=%llu connections=%llu\n",
			(unsigned long long)(st.requests[S3_M_GET] + st.requests[S3_M_HEAD] + st.requests[S3_M_PUT] +
					     st.requests[S3_M_POST] + st.requests[S3_M_DELETE] + st.requests[S3_M_OTHER]),
			(unsigned long long)st.requests[S3_M_GET], (unsigned long long)st.requests[S3_M_HEAD],
			(unsigned long long)st.requests[S3_M_PUT], (unsigned long long)st.requests[S3_M_POST],
			(unsigned long long)st.requests[S3_M_DELETE], (unsigned long long)st.attempts,
			(unsigned long long)st.connections);
	}
	if (s3->share) {
		curl_share_cleanup(s3->share);
		s3->share = NULL;
	}
	if (s3->sigv4) {
		pthread_mutex_destroy(&s3->pool_lock);
		pthread_mutex_destroy(&s3->health_lock);
		for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
			pthread_mutex_destroy(&s3->share_locks[i]);
	}
	free(s3->sigv4);
	free(s3->base_url);
	s3->sigv4 = s3->base_url = NULL;
}

static s3_handle *handle_get(gw_s3 *s3)
{
	s3_handle *sh = NULL;
	pthread_mutex_lock(&s3->pool_lock);
	if (s3->pool_len)
		sh = s3->pool[--s3->pool_len];
	pthread_mutex_unlock(&s3->pool_lock);
	if (sh)
		return sh;
	if (!(sh = malloc(sizeof(*sh))))
		return NULL;
	sh->fd = CURL_SOCKET_BAD;
	if (!(sh->curl = curl_easy_init())) {
		free(sh);
		return NULL;
	}
	return sh;
}

static void handle_put(gw_s3 *s3, s3_handle *sh)
{
	pthread_mutex_lock(&s3->pool_lock);
	if (s3->pool_len < S3_POOL_MAX) {
		s3->pool[s3->pool_len++] = sh;
		sh = NULL;
	}
	pthread_mutex_unlock(&s3->pool_lock);
	handle_free(sh);
}

/* libcurl made a socket for a connection of this handle, or closes one. */
static int sockopt_cb(void *payload, curl_socket_t fd, curlsocktype purpose)
{
	if (purpose == CURLSOCKTYPE_IPCXN)
		((s3_handle *)payload)->fd = fd;
	return CURL_SOCKOPT_OK;
}

static int closesocket_cb(void *payload, curl_socket_t fd)
{
	s3_handle *sh = payload;
	if (sh->fd == fd)
		sh->fd = CURL_SOCKET_BAD;
	return close(fd);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Health (gw_store_health_get). */

void s3_health_get(gw_s3 *s3, gw_store_health *out)
{
	pthread_mutex_lock(&s3->health_lock);
	*out = s3->health;
	pthread_mutex_unlock(&s3->health_lock);
}

void s3_stats_get(gw_s3 *s3, s3_stats *out)
{
	size_t i;
	for (i = 0; i < S3_M_COUNT; i++)
		out->requests[i] = __atomic_load_n(&s3->stats.requests[i], __ATOMIC_RELAXED);
	out->attempts = __atomic_load_n(&s3->stats.attempts, __ATOMIC_RELAXED);
	out->connections = __atomic_load_n(&s3->stats.connections, __ATOMIC_RELAXED);
}

static int method_index(const char *m)
{
	static const char *const names[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
	int i;
	for (i = 0; i < S3_M_OTHER; i++)
		if (!strcmp(m, names[i]))
			return i;
	return S3_M_OTHER;
}

/*
 * The look-up after a lost answer (landed_check) is part of the request that
 * lost it: its own answer does not make the store healthy while the
 * request it serves fails.
 */
static _Thread_local int in_landed_check;

static void health_ok(gw_s3 *s3)
{
	if (in_landed_check)
		return;
	pthread_mutex_lock(&s3->health_lock);
	s3->health.healthy = 1;
	s3->health.since_us = 0;
	s3->health.failures = 0;
	s3->health.reason[0] = '\0';
	s3->health.last_ok_us = gw_time_now_us();
	pthread_mutex_unlock(&s3->health_lock);
}

/* Trouble that began at since_us (a failed attempt: counted; a stall in flight: not). */
static void health_fail(gw_s3 *s3, int64_t since_us, int counted, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void health_fail(gw_s3 *s3, int64_t since_us, int counted, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&s3->health_lock);
	if (s3->health.healthy || since_us < s3->health.since_us)
		s3->health.since_us = since_us;
	s3->health.healthy = 0;
	s3->health.failures += counted ? 1 : 0;
	va_start(ap, fmt);
	vsnprintf(s3->health.reason, sizeof(s3->health.reason), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&s3->health_lock);
}

/* One attempt's state, seen by the curl callbacks. */
typedef struct {
	gw_s3 *s3;
	s3_request *req;
	s3_buf *response;
	s3_handle *sh;
	CURL *handle;
	size_t sent;
	int overflow;
	int answered;          /* a final (not 1xx) status line came */
	int refused_rewind;    /* libcurl wanted to send a creating request again: refused (see landed_check) */
	int64_t start_ms;      /* the attempt began (monotonic) */
	int64_t start_us;      /* the same, wall clock */
	int64_t progress_ms;   /* a byte last moved (or the request went out) */
	curl_off_t ul, dl;     /* bytes moved at progress_ms */
	int stall_reported;    /* told the health about a stall in flight */
	int cancelled;         /* the caller no longer wants the answer (s3_request.cancel) */
	char abandoned[160];   /* the watchdog gave up: why */
} transfer;

static size_t read_cb(char *out, size_t size, size_t nmemb, void *payload)
{
	transfer *t = payload;
	size_t n = t->req->body_len - t->sent;
	if (n > size * nmemb)
		n = size * nmemb;
	if (n)
		memcpy(out, (const char *)t->req->body + t->sent, n);
	t->sent += n;
	return n;
}

static int seek_cb(void *payload, curl_off_t offset, int origin)
{
	transfer *t = payload;
	if (origin != SEEK_SET || offset < 0 || (size_t)offset > t->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	/*
	 * libcurl rewinds to send the request again on a fresh connection when a
	 * reused one closed without a byte of answer: after the server may have
	 * done the work. A creating request goes through landed_check instead.
	 */
	if (t->req->landed_check && t->sent) {
		t->refused_rewind = 1;
		return CURL_SEEKFUNC_FAIL;
	}
	t->sent = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

/*
 * The watchdog: phases of an attempt and their limits. Connecting is
 * libcurl's (CURLOPT_CONNECTTIMEOUT_MS); sending and receiving may not stand
 * still for stall_timeout; between the last byte sent and the answer's first
 * the server works (checksums, stores), for up to first_byte_timeout. A
 * wait longer than stall_timeout makes the store unhealthy at once, before
 * the attempt is abandoned.
 */
static int progress_cb(void *payload, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	transfer *t = payload;
	const s3_config *cfg = &t->s3->cfg;
	int64_t now = mono_ms(), limit, idle;
	curl_off_t pre = 0;
	const char *phase;
	(void)dltotal;
	(void)ultotal;

	if (t->req->cancel && __atomic_load_n(t->req->cancel, __ATOMIC_ACQUIRE)) {
		t->cancelled = 1;
		return 1;
	}
	if (curl_easy_getinfo(t->handle, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK || pre == 0) {
		t->progress_ms = now; /* still connecting */
		return 0;
	}
	if (ulnow != t->ul || dlnow != t->dl) {
		t->ul = ulnow;
		t->dl = dlnow;
		t->progress_ms = now;
	}
	if (t->answered) {
		phase = "receiving the answer";
		limit = cfg->stall_timeout_ms;
	} else if (t->req->upload && (uint64_t)ulnow < t->req->body_len) {
		phase = "sending the request";
		limit = cfg->stall_timeout_ms;
	} else {
		phase = "waiting for the answer";
		limit = cfg->first_byte_timeout_ms;
	}
	idle = now - t->progress_ms;
	if (idle >= limit) {
		snprintf(t->abandoned, sizeof(t->abandoned), "abandoned after %lld ms without a byte %s",
			 (long long)idle, phase);
		return 1;
	}
	if (idle >= cfg->stall_timeout_ms && !t->stall_reported) {
		t->stall_reported = 1;
		health_fail(t->s3, t->start_us + (t->progress_ms - t->start_ms) * 1000, 0,
			    "%s %s: no byte for %lld ms %s", t->req->method, t->req->key ? t->req->key : "(bucket)",
			    (long long)idle, phase);
	}
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *payload)
{
	transfer *t = payload;
	if (s3_buf_append(t->response, data, size * nmemb) < 0) {
		t->overflow = 1;
		return 0;
	}
	return size * nmemb;
}

static void copy_header_value(char *dst, size_t size, const char *v, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/*
 * Acknowledge the answer's head at once. A server that writes an answer's
 * head and body (or a "100 Continue" and the final answer) separately
 * without TCP_NODELAY (radosgw) holds the second back until the first is
 * acknowledged (Nagle), and on a reused connection Linux delays that
 * acknowledgement by up to 40 ms: every small GET, and every upload of more
 * than 1 KiB, took 40 ms instead of 1-2. TCP_QUICKACK sends the pending
 * acknowledgement now. Best effort: nothing changes where the option or the
 * socket is not there.
 */
static void ack_now(const s3_handle *sh)
{
#ifdef TCP_QUICKACK
	int one = 1;
	if (sh->fd != CURL_SOCKET_BAD)
		setsockopt(sh->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
	(void)sh;
#endif
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *payload)
{
	transfer *t = payload;
	s3_request *req = t->req;
	size_t len = size * nmemb, n;
	const char *colon = memchr(data, ':', len), *v, *end = data + len;
	char tmp[128];

	if (len > 5 && !memcmp(data, "HTTP/", 5)) {
		const char *sp = memchr(data, ' ', len);
		t->answered = !(sp && sp + 1 < data + len && sp[1] == '1');
		ack_now(t->sh);
		/* A new status line (after "100 Continue", or a retry): forget earlier headers. */
		req->content_length = 0;
		req->last_modified = req->retain_until = 0;
		req->etag[0] = req->version_id[0] = '\0';
		return len;
	}
	if (!colon) {
		ack_now(t->sh); /* the end of a head: a body, or the final answer after "100 Continue", follows */
		return len;
	}
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	n = (size_t)(colon - data);
	copy_header_value(tmp, sizeof(tmp), v, (size_t)(end - v));
#define IS(name) (n == sizeof(name) - 1 && !strncasecmp(data, name, n))
	if (IS("content-length"))
		req->content_length = strtoull(tmp, NULL, 10);
	else if (IS("last-modified"))
		req->last_modified = s3_parse_http_date(tmp);
	else if (IS("etag"))
		copy_header_value(req->etag, sizeof(req->etag), v, (size_t)(end - v));
	else if (IS("x-amz-version-id"))
		copy_header_value(req->version_id, sizeof(req->version_id), v, (size_t)(end - v));
	else if (IS("x-amz-object-lock-retain-until-date"))
		req->retain_until = s3_parse_iso8601(tmp);
#undef IS
	return len;
}

static char *request_url(gw_s3 *s3, const s3_request *req)
{
	s3_buf b = {0};
	const char *name = req->object;
	int ok = s3_buf_append(&b, s3->base_url, strlen(s3->base_url)) == 0;
	if (ok && (req->key || name)) {
		ok = s3_buf_append(&b, "/", 1) == 0;
		if (ok && req->key && s3->cfg.prefix[0])
			ok = s3_uri_encode(&b, s3->cfg.prefix, 1) == 0 && s3_buf_append(&b, "/", 1) == 0;
		if (ok)
			ok = s3_uri_encode(&b, req->key ? req->key : name, 1) == 0;
	} else if (ok && s3->cfg.path_style) {
		ok = s3_buf_append(&b, "/", 1) == 0;
	}
	if (ok && req->query && *req->query)
		ok = s3_buf_append(&b, "?", 1) == 0 && s3_buf_append(&b, req->query, strlen(req->query)) == 0;
	if (ok)
		ok = s3_buf_append(&b, "", 1) == 0;
	if (!ok) {
		s3_buf_dispose(&b);
		return NULL;
	}
	return (char *)b.data;
}

/*
 * Content-MD5 on every upload: the server refuses a body damaged on the way
 * (BadDigest). It is a signed header, so with UNSIGNED-PAYLOAD the body is
 * still bound to the signature, and neither side hashes object data twice.
 */
static void body_digests(const s3_request *req, char *sha_hex, char *md5_b64)
{
	unsigned char d[32];
	unsigned int n;
	if (req->unsigned_payload) {
		strcpy(sha_hex, "UNSIGNED-PAYLOAD");
	} else {
		gw_hash_buffer(GW_HASH_SHA256, req->body, req->body_len, d);
		gw_hex_encode(sha_hex, d, 32);
	}
	if (req->md5) {
		EVP_EncodeBlock((unsigned char *)md5_b64, req->md5, 16);
		return;
	}
	EVP_Digest(req->body, req->body_len, d, &n, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)md5_b64, d, (int)n);
}

#define REQ_HEADERS_MAX (sizeof(((s3_request *)0)->headers) / sizeof(((s3_request *)0)->headers[0]))

static int has_header(const s3_request *req, const char *prefix)
{
	size_t i;
	for (i = 0; i < REQ_HEADERS_MAX && req->headers[i]; i++)
		if (!strncasecmp(req->headers[i], prefix, strlen(prefix)))
			return 1;
	return 0;
}

/* The caller's headers after the list; frees the list on failure. */
static struct curl_slist *add_headers(struct curl_slist *list, const s3_request *req)
{
	size_t i;
	for (i = 0; i < REQ_HEADERS_MAX && req->headers[i]; i++) {
		struct curl_slist *next = curl_slist_append(list, req->headers[i]);
		if (!next) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = next;
	}
	return list;
}

static struct curl_slist *request_headers(gw_s3 *s3, const s3_request *req)
{
	struct curl_slist *list = NULL, *next;
	char line[256];

	if (req->upload) {
		char sha[GW_HEX_MAX], md5[32];
		body_digests(req, sha, md5);
		snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
		if (!(list = curl_slist_append(list, line)))
			return NULL;
		/* A caller's own Content-MD5 (a test of the server's check) replaces ours. */
		if (!has_header(req, "Content-MD5:")) {
			snprintf(line, sizeof(line), "Content-MD5: %s", md5);
			if (!(next = curl_slist_append(list, line)))
				goto fail;
			list = next;
		}
	} else {
		snprintf(line, sizeof(line), "x-amz-content-sha256: %s", EMPTY_SHA256);
		if (!(list = curl_slist_append(list, line)))
			return NULL;
	}
	if (s3->cred.session_token) {
		size_t n = strlen(s3->cred.session_token) + 32;
		char *h = malloc(n);
		if (!h)
			goto fail;
		snprintf(h, n, "x-amz-security-token: %s", s3->cred.session_token);
		next = curl_slist_append(list, h);
		explicit_bzero(h, n);
		free(h);
		if (!next)
			goto fail;
		list = next;
	}
	return add_headers(list, req);
fail:
	curl_slist_free_all(list);
	return NULL;
}

static void setup_handle(gw_s3 *s3, s3_handle *sh, s3_request *req, transfer *t, const char *url,
			 struct curl_slist *headers, char *errbuf, int64_t left_ms)
{
	CURL *h = sh->curl;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, sh);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, sh);
	curl_easy_setopt(h, CURLOPT_SHARE, s3->share);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, s3->cred.userpwd);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s3->cfg.connect_timeout_ms);
	/* The rest of the request's deadline; stalls are the watchdog's (progress_cb). */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left_ms > 1 ? left_ms : 1));
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
	/* Verification stays on; ca_file only changes what it trusts. */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s3->cfg.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, s3->cfg.ca_file);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (req->upload) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		/* Fewer, larger reads for multi-MiB parts. */
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
		/*
		 * The body goes at once, without waiting for "100 Continue" (a
		 * second a server may not send it in, that would count against
		 * stall_timeout; the header itself cannot be dropped, it would be
		 * signed unsent).
		 */
		curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, t);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, t);
		if (strcmp(req->method, "PUT"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (req->expect_bytes >= 1024 * 1024) {
		/* Fewer, larger writes for multi-MiB ranges. */
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	}
}

static int transient_curl_error(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* Full jitter: a random wait in [delay/2, delay] ms, delay doubling up to a cap. */
static unsigned backoff_ms(unsigned attempt)
{
	static _Thread_local unsigned seed;
	unsigned delay = S3_BACKOFF_BASE_MS << (attempt < 10 ? attempt : 10);
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed ^ (unsigned)getpid();
	if (delay > S3_BACKOFF_CAP_MS)
		delay = S3_BACKOFF_CAP_MS;
	return delay / 2 + (unsigned)rand_r(&seed) % (delay / 2 + 1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}

static int status_accepted(const s3_request *req)
{
	size_t i;
	if (req->status >= 200 && req->status < 300)
		return 1;
	for (i = 0; i < sizeof(req->ok_status) / sizeof(req->ok_status[0]); i++)
		if (req->ok_status[i] && req->ok_status[i] == req->status)
			return 1;
	return 0;
}

/* The one-line message for an S3 error answer: what happened, and what to check. */
static int status_error(gw_s3 *s3, s3_request *req, const char *what, const char *message)
{
	const char *code = req->error_code;
	long st = req->status;
	char detail[512];

	if (*code && message && *message)
		snprintf(detail, sizeof(detail), "%s: %s", code, message);
	else
		snprintf(detail, sizeof(detail), "%s", *code ? code : "no error code");
	if (!strcmp(code, "SignatureDoesNotMatch"))
		return gw_error_set(GW_EAUTH, "store %s: %s: access denied (%s): check AWS_SECRET_ACCESS_KEY", s3->url,
				    what, code);
	if (!strcmp(code, "InvalidAccessKeyId"))
		return gw_error_set(GW_EAUTH, "store %s: %s: access denied (%s): check AWS_ACCESS_KEY_ID", s3->url,
				    what, code);
	if (!strcmp(code, "ExpiredToken") || !strcmp(code, "InvalidToken"))
		return gw_error_set(GW_EAUTH, "store %s: %s: access denied (%s): check AWS_SESSION_TOKEN", s3->url,
				    what, code);
	if (!strcmp(code, "RequestTimeTooSkewed"))
		return gw_error_set(GW_EAUTH, "store %s: %s: refused (%s): the system clock is wrong", s3->url, what,
				    code);
	if (st == 403)
		return gw_error_set(GW_EAUTH, "store %s: %s: access denied (%s)", s3->url, what, detail);
	if (!strcmp(code, "NoSuchBucket"))
		return gw_error_set(GW_ENOTFOUND, "store %s: bucket %s does not exist", s3->url, s3->cfg.bucket);
	if (st == 404 && req->key)
		return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, req->key, s3->url);
	if (st == 404)
		return gw_error_set(GW_ENOTFOUND, "store %s: %s: not found (%s)", s3->url, what, detail);
	if (!strcmp(code, "BadDigest") || !strcmp(code, "InvalidDigest"))
		return gw_error_set(GW_ECORRUPT,
				    "store %s: %s: the server received a body that does not match its checksum (%s)",
				    s3->url, what, code);
	if (st >= 400 && st < 500)
		return gw_error_set(GW_EINVALID, "store %s: %s: refused with HTTP %ld (%s)", s3->url, what, st, detail);
	return gw_error_set(GW_EIO, "store %s: %s: HTTP %ld (%s) after %u attempts", s3->url, what, st, detail,
			    req->attempts);
}

/* The request's deadline, from now: the store's, plus its bytes at S3_DEADLINE_RATE. */
static int64_t request_deadline_ms(const gw_s3 *s3, const s3_request *req)
{
	uint64_t bytes = (req->upload ? req->body_len : 0) + req->expect_bytes;
	return s3->cfg.deadline_ms + (int64_t)(bytes / (S3_DEADLINE_RATE / 1000));
}

/* Could the attempt have reached the server (the request went out, whole or in part)? */
static int attempt_reached(CURL *h, CURLcode cc, const transfer *t)
{
	curl_off_t pre = 0;
	if (t->sent || t->answered)
		return 1;
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_SSL_CONNECT_ERROR)
		return 0;
	return curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK || pre != 0;
}

int s3_request_run(gw_s3 *s3, s3_request *req)
{
	char errbuf[CURL_ERROR_SIZE], what[1200];
	unsigned max_attempts = (unsigned)s3->cfg.retries + 1;
	struct curl_slist *headers = NULL;
	char *url = NULL, *message = NULL;
	CURLcode cc = CURLE_OK;
	int64_t deadline;
	int out_of_time = 0;
	transfer t;
	s3_handle *sh;
	CURL *h;
	int rc = 0;

	if (!req->upload)
		req->upload = !strcmp(req->method, "PUT") || !strcmp(req->method, "POST");
	req->landed = 0;
	deadline = mono_ms() + request_deadline_ms(s3, req);
	if (req->key)
		snprintf(what, sizeof(what), "key %s", req->key);
	else if (req->object)
		snprintf(what, sizeof(what), "object %s", req->object);
	else
		snprintf(what, sizeof(what), "bucket %s", s3->cfg.bucket);
	if (!req->response) {
		req->response = &req->own_response;
		req->own_response.max = S3_SMALL_RESPONSE_MAX;
	}
	if (!(url = request_url(s3, req)) || !(headers = request_headers(s3, req))) {
		free(url);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	if (!(sh = handle_get(s3))) {
		curl_slist_free_all(headers);
		free(url);
		return gw_error_set(GW_ERROR, "cannot create a libcurl handle");
	}
	__atomic_fetch_add(&s3->stats.requests[method_index(req->method)], 1, __ATOMIC_RELAXED);
	for (req->attempts = 1;; req->attempts++) {
		int failed, lost;
		long conns = 0;
		unsigned wait;
		memset(&t, 0, sizeof(t));
		t.s3 = s3;
		t.req = req;
		t.handle = h = sh->curl;
		t.sh = sh;
		if (req->cancel && __atomic_load_n(req->cancel, __ATOMIC_ACQUIRE)) {
			t.cancelled = 1; /* between attempts */
			break;
		}
		t.response = req->response;
		t.start_ms = t.progress_ms = mono_ms();
		t.start_us = gw_time_now_us();
		req->response->len = 0;
		req->status = 0;
		req->error_code[0] = '\0';
		errbuf[0] = '\0';
		setup_handle(s3, sh, req, &t, url, headers, errbuf, deadline - t.start_ms);
		/* libcurl resends a request without a body on a fresh connection unasked: not a creating one. */
		if (req->landed_check && !req->body_len)
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		cc = curl_easy_perform(h);
		if (cc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &req->status);
		if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
			__atomic_fetch_add(&s3->stats.connections, (uint64_t)conns, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s3->stats.attempts, 1, __ATOMIC_RELAXED);
		if (s3->trace)
			fprintf(stderr, "s3_trace method=%s %s attempt=%u status=%ld curl=%d new_connection=%ld start_ms=%lld ms=%lld\n",
				req->method, what, req->attempts, req->status, (int)cc, conns,
				(long long)(t.start_us / 1000 % 1000000), (long long)(mono_ms() - t.start_ms));
		if (t.cancelled)
			break; /* not the store's doing: no health report, no retry */
		if (cc == CURLE_OK)
			failed = req->status >= 500 || req->status == 429;
		else
			failed = transient_curl_error(cc) || t.abandoned[0] || t.refused_rewind;
		if (cc == CURLE_OK && !failed && req->status != 401 && req->status != 403)
			health_ok(s3);
		else if (cc == CURLE_OK)
			health_fail(s3, t.start_us, 1, "%s %s: HTTP %ld", req->method, what, req->status);
		else
			health_fail(s3, t.start_us + (t.progress_ms - t.start_ms) * 1000, 1, "%s %s: %s", req->method, what,
				    t.abandoned[0] ? t.abandoned : errbuf[0] ? errbuf : curl_easy_strerror(cc));
		if (!failed)
			break;
		lost = req->landed_check && attempt_reached(h, cc, &t);
		wait = backoff_ms(req->attempts - 1);
		out_of_time = mono_ms() + wait >= deadline;
		if (req->attempts < max_attempts && !out_of_time)
			sleep_ms(wait);
		if (lost) {
			/* The first send may have done the work: look before sending again. */
			int found;
			in_landed_check++;
			found = req->landed_check(s3, req, req->landed_payload);
			in_landed_check--;
			if (found < 0) {
				rc = found;
				gw_error_prefix("store %s: %s: the answer to %s was lost (%s), and whether it was stored cannot be told",
						s3->url, what, req->method,
						t.abandoned[0] ? t.abandoned : cc == CURLE_OK ? "an HTTP 5xx" :
						errbuf[0] ? errbuf : curl_easy_strerror(cc));
				break;
			}
			if (found) {
				health_ok(s3);
				req->landed = 1;
				req->status = 200;
				req->response->len = 0; /* the lost attempt's error body */
				cc = CURLE_OK;
				break;
			}
		}
		if (req->attempts >= max_attempts || out_of_time)
			break;
	}
	/* Credentials and callbacks must not outlive this request in a pooled handle. */
	curl_easy_reset(sh->curl);
	handle_put(s3, sh);
	curl_slist_free_all(headers);
	free(url);
	if (rc < 0)
		return rc;
	if (t.cancelled)
		return gw_error_set(GW_ERROR, "store %s: %s: %s cancelled", s3->url, what, req->method);
	if (cc != CURLE_OK) {
		char detail[400];
		if (t.overflow)
			return gw_error_set(GW_EIO, "store %s: %s: %s answered more than expected", s3->url, what,
					    req->method);
		if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
			return gw_error_set(GW_EIO, "store %s: %s: TLS verification failed (%s); give ca_file= for a private CA",
					    s3->url, what, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		if (t.abandoned[0])
			snprintf(detail, sizeof(detail), "%s", t.abandoned);
		else if (t.refused_rewind)
			snprintf(detail, sizeof(detail), "the connection closed without an answer");
		else
			snprintf(detail, sizeof(detail), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
		return gw_error_set(GW_EIO, "store %s: %s: %s failed after %u attempt%s%s: %s", s3->url, what, req->method,
				    req->attempts, req->attempts == 1 ? "" : "s",
				    out_of_time && req->attempts < max_attempts ? " (its deadline came)" : "", detail);
	}
	if (status_accepted(req))
		return 0;
	if (req->response->len) {
		char *code = NULL;
		/* An error body that is not XML still gets the status in the message. */
		if (s3_xml_text(req->response->data, req->response->len, "Code", &code) == 0 && code)
			snprintf(req->error_code, sizeof(req->error_code), "%s", code);
		free(code);
		s3_xml_text(req->response->data, req->response->len, "Message", &message);
	}
	rc = status_error(s3, req, what, message);
	free(message);
	return rc;
}

void s3_request_dispose(s3_request *req)
{
	s3_buf_dispose(&req->own_response);
}
