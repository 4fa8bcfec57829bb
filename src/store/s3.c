/*
 * The s3:// storage driver: Amazon S3 and compatible servers (Ceph radosgw).
 *
 * Write-once on S3:
 *  - A small object (it fits one part buffer) is one PUT with
 *    If-None-Match: *, so a bucket without versioning refuses a second write
 *    of a key (412 -> GW_EEXISTS). Larger or unknown-size objects stream as a
 *    multipart upload, made visible only by CompleteMultipartUpload at commit;
 *    a writer freed without commit aborts it, so nothing shows under the key.
 *  - Versioned buckets (every Object Lock bucket is one) keep a second write
 *    as a new version, and radosgw ignores If-None-Match there. So before it
 *    makes an object visible the driver checks with HEAD that the key is free
 *    (best effort: two writers racing on one key both pass), and stat()
 *    counts a key's versions so an audit can see a key written twice.
 *  - With lock=, every object is created with Object Lock retention (PUT or
 *    CreateMultipartUpload headers), and open refuses a bucket without Object
 *    Lock rather than store unprotected objects.
 *
 * Parallel transfers, with bounded memory (DESIGN.md 12.2): a writer fills
 * one part buffer from its caller while up to parallel= full ones upload on
 * the store's transfer threads (s3_xfer.c), and waits for one to come back
 * when all are in flight (backpressure). Parts complete in any order; the
 * ETags are kept by part number for the completion. A reader of more than
 * one chunk keeps up to parallel= ranged GETs of READ_CHUNK bytes in flight
 * and hands their bytes out in order. Buffers past a writer's first two and
 * a reader's first come from the store's budget (S3_BUFFER_BUDGET). Every
 * ranged GET is pinned to the ETag seen at open (If-Match), so a reader
 * never mixes two versions.
 */
#include "store/s3.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#define PART_SIZE S3_PART_SIZE
#define PART_SIZE_GROWTH 2000        /* parts of one size before it doubles (S3 allows 10,000 parts) */
#define MAX_PARTS 10000
#define READ_CHUNK S3_READ_CHUNK
#define LIST_PAGE_MAX (64u * 1024 * 1024)

struct s3_writer;

/* A part buffer: uploading on a transfer thread (busy), or idle for the next part. */
typedef struct {
	s3_job job;
	struct s3_writer *w;
	s3_buf buf;
	unsigned number; /* its part number (1-based) */
	int busy;        /* a transfer thread has it (under w->mu) */
	int finished;    /* its upload ended and the writer has not looked yet */
	int rc;
	char *msg;       /* the transfer thread's error message */
	char etag[80];
} w_slot;

typedef struct s3_writer {
	gw_store_writer base;
	gw_s3 *s3;
	s3_buf fill;     /* the part the caller is filling */
	uint64_t size_hint;
	char *upload_id; /* set once the object went multipart */
	unsigned nparts; /* parts started */
	uint64_t total;  /* bytes of the parts started */
	char (*etags)[80];
	size_t etags_cap;
	char lock[2][96]; /* Object Lock headers sent at creation */
	/* Parts in flight (their slots, and the transfer threads' reports, under mu). */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	w_slot *slots[S3_MAX_PARALLEL];
	size_t nslots;      /* slots made; the first is the writer's own, the others the budget's */
	size_t slot_size;   /* the part size the budget was charged for, per slot past the first */
	unsigned busy;      /* slots in flight */
	int cancel;         /* atomic: parts in flight stop (a part failed, or the writer is freed unused) */
	int part_rc;        /* the first failed part's error, and its message */
	char *part_msg;
	int failed;      /* a write failed: the object can never be committed */
	int done;
} s3_writer;

struct s3_reader;

/* A range buffer: downloading on a transfer thread (busy), or holding bytes to hand out. */
typedef struct {
	s3_job job;
	struct s3_reader *r;
	s3_buf buf;
	uint64_t at;   /* the range's first byte */
	size_t want;   /* and its length */
	size_t off;    /* bytes of buf handed out */
	int busy;      /* a transfer thread has it (under r->mu) */
	int rc;
	char *msg;
} r_slot;

typedef struct s3_reader {
	gw_store_reader base;
	gw_s3 *s3;
	uint64_t pos, end; /* the next byte to hand out, and the range's end */
	uint64_t next;     /* the next byte to ask for */
	char etag[80];
	/* One slot, fetched on the caller's thread; or, for a range of several chunks, a ring of them in flight. */
	r_slot *slots;
	size_t nslots, head; /* slots[head] holds pos */
	size_t charged;      /* budget bytes taken */
	int started, threaded;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int cancel; /* atomic: ranges in flight stop (the reader is freed early) */
} s3_reader;

static gw_s3 *impl(gw_store *store)
{
	return store->impl;
}

gw_s3 *gw_s3_from_store(gw_store *store)
{
	return store->driver == &gw_store_driver_s3 ? store->impl : NULL;
}

static int oom(void)
{
	return gw_error_set(GW_ERROR, "out of memory");
}

/* The object name of a key: the store's prefix, then the key. */
static char *object_name(gw_s3 *s3, const char *key)
{
	size_t n = strlen(s3->cfg.prefix) + strlen(key) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", s3->cfg.prefix, s3->cfg.prefix[0] ? "/" : "", key);
	return p;
}

/* Store setup. */

static void s3_destroy(gw_s3 *s3)
{
	size_t i;
	if (!s3)
		return;
	s3_xfer_dispose(s3);
	s3_disconnect(s3);
	for (i = 0; i < s3->nuploads; i++)
		free(s3->uploads[i]);
	free(s3->uploads);
	pthread_mutex_destroy(&s3->uploads_lock);
	pthread_mutex_destroy(&s3->probe_lock);
	gw_owner_cleared_dispose(&s3->cleared);
	pthread_mutex_destroy(&s3->cleared.lock);
	s3_credentials_dispose(&s3->cred);
	s3_config_dispose(&s3->cfg);
	free(s3);
}

static int s3_create(gw_s3 **out, const char *rest)
{
	gw_s3 *s3 = calloc(1, sizeof(*s3));
	int rc;
	*out = NULL;
	if (!s3)
		return oom();
	pthread_mutex_init(&s3->uploads_lock, NULL);
	pthread_mutex_init(&s3->probe_lock, NULL);
	pthread_mutex_init(&s3->cleared.lock, NULL);
	s3_xfer_init(s3);
	if ((rc = s3_config_parse(&s3->cfg, rest)) < 0) {
		s3_xfer_dispose(s3);
		pthread_mutex_destroy(&s3->uploads_lock);
		pthread_mutex_destroy(&s3->probe_lock);
		pthread_mutex_destroy(&s3->cleared.lock);
		free(s3);
		return rc;
	}
	if ((rc = s3_credentials_load(&s3->cred)) < 0 || (rc = s3_connect(s3)) < 0) {
		gw_error_prefix("store s3://%s/%s", s3->cfg.bucket, s3->cfg.prefix);
		s3_destroy(s3);
		return rc;
	}
	*out = s3;
	return 0;
}

/* GET ?versioning= and, with lock=, ?object-lock=: what this bucket can do. */
static int probe_bucket(gw_s3 *s3)
{
	s3_request req = {.method = "GET", .query = "versioning="};
	char *status = NULL;
	int rc;

	if ((rc = s3_request_run(s3, &req)) == 0 &&
	    (rc = s3_xml_text(req.response->data, req.response->len, "Status", &status)) == 0)
		s3->versioned = status && (!strcmp(status, "Enabled") || !strcmp(status, "Suspended"));
	free(status);
	status = NULL;
	s3_request_dispose(&req);
	if (rc < 0 || !s3->cfg.lock_mode)
		return rc;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.query = "object-lock=";
	req.ok_status[0] = 404; /* ObjectLockConfigurationNotFoundError: no lock */
	if ((rc = s3_request_run(s3, &req)) == 0 && req.status == 200)
		rc = s3_xml_text(req.response->data, req.response->len, "ObjectLockEnabled", &status);
	if (rc == 0 && (!status || strcmp(status, "Enabled")))
		rc = gw_error_set(GW_EINVALID,
				  "store %s: bucket %s has no Object Lock, so lock= cannot protect its objects: use a bucket created with Object Lock enabled, or drop lock=",
				  s3->url, s3->cfg.bucket);
	free(status);
	s3_request_dispose(&req);
	return rc;
}

static void set_features(gw_store *store, gw_s3 *s3)
{
	store->features = (s3->versioned ? GW_STORE_FEATURE_VERSIONS : 0) |
			  (s3->cfg.lock_mode ? GW_STORE_FEATURE_LOCK : 0);
}

/*
 * The probe deferred at open (the store was unreachable), made before
 * anything that depends on it: writes (a versioned bucket needs the
 * existence check, lock= an Object Lock bucket) and stat. Until it succeeds,
 * those fail as the probe does (GW_EIO while the store is away).
 */
static int ensure_probed(gw_store *store)
{
	gw_s3 *s3 = store->impl;
	int rc = 0;
	if (__atomic_load_n(&s3->probed, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&s3->probe_lock);
	if (!s3->probed && (rc = probe_bucket(s3)) == 0) {
		set_features(store, s3);
		__atomic_store_n(&s3->probed, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s3->probe_lock);
	return rc;
}

static int s3_open(gw_store *store, const char *rest)
{
	gw_s3 *s3;
	int rc;

	if ((rc = s3_create(&s3, rest)) < 0)
		return rc;
	if (!(store->url = s3_config_url(&s3->cfg))) {
		s3_destroy(s3);
		return oom();
	}
	s3->url = store->url;
	if ((rc = probe_bucket(s3)) < 0 && !(rc == GW_EIO && (store->open_flags & GW_STORE_OPEN_DEFER_CHECKS))) {
		s3_destroy(s3);
		return rc;
	}
	s3->probed = rc == 0;
	gw_error_clear();
	store->impl = s3;
	set_features(store, s3);
	return 0;
}

static void s3_free(gw_store *store)
{
	s3_destroy(impl(store));
}

int gw_s3_bucket_create(const char *url, int kind)
{
	static const char versioning[] = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
					 "<Status>Enabled</Status></VersioningConfiguration>";
	s3_request req = {.method = "PUT"};
	char body[256];
	gw_s3 *s3;
	int rc;

	if (strncmp(url, "s3://", 5))
		return gw_error_set(GW_EINVALID, "'%s' is not an s3:// URL", url);
	if ((rc = s3_create(&s3, url + 5)) < 0)
		return rc;
	s3->url = url;
	if (kind == GW_S3_BUCKET_LOCK)
		req.headers[0] = "x-amz-bucket-object-lock-enabled: true";
	/* Outside us-east-1, S3 wants the region in the body. */
	if (strcmp(s3->cfg.region, "us-east-1"))
		snprintf(body, sizeof(body),
			 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
			 s3->cfg.region);
	else
		body[0] = '\0';
	req.body = body;
	req.body_len = strlen(body);
	rc = s3_request_run(s3, &req);
	s3_request_dispose(&req);
	if (rc == 0 && kind == GW_S3_BUCKET_VERSIONED) {
		memset(&req, 0, sizeof(req));
		req.method = "PUT";
		req.query = "versioning=";
		req.body = versioning;
		req.body_len = sizeof(versioning) - 1;
		rc = s3_request_run(s3, &req);
		s3_request_dispose(&req);
	}
	s3_destroy(s3);
	return rc;
}

/* Lock headers for an object created now; `buf` holds them. */
static void lock_headers(gw_s3 *s3, s3_request *req, size_t slot, char buf[2][96])
{
	char date[40];
	if (!s3->cfg.lock_mode)
		return;
	s3_format_iso8601(date, sizeof(date), (int64_t)time(NULL) + s3->cfg.retain_seconds);
	snprintf(buf[0], 96, "x-amz-object-lock-mode: %s",
		 s3->cfg.lock_mode == S3_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE");
	snprintf(buf[1], 96, "x-amz-object-lock-retain-until-date: %s", date);
	req->headers[slot] = buf[0];
	req->headers[slot + 1] = buf[1];
}

/* HEAD: does the key exist (its latest version)? */
static int key_exists(gw_s3 *s3, const char *key, int *exists, s3_request *out)
{
	s3_request req = {.method = "HEAD", .key = key, .ok_status = {404}};
	int rc = s3_request_run(s3, &req);
	*exists = rc == 0 && req.status != 404;
	s3_request_dispose(&req);
	if (out) {
		/* Only the headers are of use after this. */
		*out = req;
		out->response = NULL;
	}
	return rc;
}

/* GW_EEXISTS when the key is taken; `always` checks even where If-None-Match would refuse. */
static int refuse_existing(gw_s3 *s3, const char *key, int always)
{
	int exists, rc;
	if (!s3->versioned && !always)
		return 0;
	if ((rc = key_exists(s3, key, &exists, NULL)) < 0)
		return rc;
	return exists ? gw_error_set(GW_EEXISTS, GW_STORE_MSG_EXISTS, key, s3->url) : 0;
}

/* This store's uploads in progress (see gw_s3.uploads). */

static void upload_track(gw_s3 *s3, const char *id, int add)
{
	size_t i;
	pthread_mutex_lock(&s3->uploads_lock);
	if (add) {
		/* Without memory it goes untracked: only its age then protects it. */
		if (GW_ARRAY_RESERVE(s3->uploads, s3->uploads_cap, s3->nuploads + 1) == 0 &&
		    (s3->uploads[s3->nuploads] = strdup(id)))
			s3->nuploads++;
	} else {
		for (i = 0; i < s3->nuploads; i++)
			if (!strcmp(s3->uploads[i], id)) {
				free(s3->uploads[i]);
				s3->uploads[i] = s3->uploads[--s3->nuploads];
				break;
			}
	}
	pthread_mutex_unlock(&s3->uploads_lock);
}

static int upload_mine(gw_s3 *s3, const char *id)
{
	size_t i;
	int mine = 0;
	pthread_mutex_lock(&s3->uploads_lock);
	for (i = 0; i < s3->nuploads && !mine; i++)
		mine = !strcmp(s3->uploads[i], id);
	pthread_mutex_unlock(&s3->uploads_lock);
	return mine;
}

/* Writers. */

static size_t part_size_for(unsigned part_index)
{
	unsigned shift = part_index / PART_SIZE_GROWTH;
	return (size_t)PART_SIZE << (shift < 4 ? shift : 4);
}

static int s3_write_open(gw_store_writer **out, gw_store *store, const char *key, uint64_t size_hint)
{
	s3_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return oom();
	w->s3 = impl(store);
	w->size_hint = size_hint;
	/* A known small object gets exactly its size; anything else grows as bytes come. */
	if (size_hint != GW_STORE_SIZE_UNKNOWN && size_hint <= PART_SIZE &&
	    s3_buf_reserve(&w->fill, size_hint ? (size_t)size_hint : 1) < 0) {
		free(w);
		return GW_ERROR;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	*out = &w->base;
	return 0;
}

static int multipart_start(s3_writer *w)
{
	s3_request req = {.method = "POST", .key = w->base.key, .query = "uploads="};
	int rc;

	if ((rc = ensure_probed(w->base.store)) < 0)
		return rc;
	lock_headers(w->s3, &req, 0, w->lock);
	if ((rc = s3_request_run(w->s3, &req)) == 0 &&
	    (rc = s3_xml_text(req.response->data, req.response->len, "UploadId", &w->upload_id)) == 0 &&
	    (!w->upload_id || !*w->upload_id))
		rc = gw_error_set(GW_EIO, "store %s: key %s: CreateMultipartUpload answered no UploadId", w->s3->url,
				  w->base.key);
	if (rc == 0)
		upload_track(w->s3, w->upload_id, 1);
	s3_request_dispose(&req);
	return rc;
}

/* On a transfer thread: upload one part, then hand the slot back. */
static void part_run(s3_job *job)
{
	w_slot *sl = (w_slot *)job;
	s3_writer *w = sl->w;
	char number[16];
	s3_param params[2] = {{"partNumber", number}, {"uploadId", w->upload_id}};
	s3_request req = {.method = "PUT", .key = w->base.key, .cancel = &w->cancel};
	char *query, *msg = NULL;
	int rc;

	snprintf(number, sizeof(number), "%u", sl->number);
	sl->etag[0] = '\0';
	if (!(query = s3_query_build(params, 2))) {
		rc = oom();
	} else {
		req.query = query;
		req.body = sl->buf.data;
		req.body_len = sl->buf.len;
		/* Its Content-MD5 is computed here, on the transfer thread: parts in flight hash at once. */
		req.unsigned_payload = 1;
		rc = s3_request_run(w->s3, &req);
		if (rc == 0 && !req.etag[0])
			rc = gw_error_set(GW_EIO, "store %s: key %s: part %u was stored without an ETag", w->s3->url,
					  w->base.key, sl->number);
		if (rc == 0)
			memcpy(sl->etag, req.etag, sizeof(sl->etag));
	}
	/* The message is this thread's: it goes to the writer's thread with the slot. */
	if (rc < 0 && !(msg = strdup(gw_error_message())))
		msg = NULL;
	s3_request_dispose(&req);
	free(query);
	pthread_mutex_lock(&w->mu);
	sl->rc = rc;
	sl->msg = msg;
	sl->busy = 0;
	sl->finished = 1;
	w->busy--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Take in the parts that finished (under w->mu): their ETags, and the
 * first failure, which stops the others.
 */
static void parts_reap(s3_writer *w)
{
	size_t i;
	for (i = 0; i < w->nslots; i++) {
		w_slot *sl = w->slots[i];
		if (!sl->finished)
			continue;
		sl->finished = 0;
		if (sl->rc < 0 && !w->part_rc) {
			w->part_rc = sl->rc;
			w->part_msg = sl->msg;
			sl->msg = NULL;
			__atomic_store_n(&w->cancel, 1, __ATOMIC_RELEASE);
		} else if (sl->rc == 0) {
			memcpy(w->etags[sl->number - 1], sl->etag, sizeof(sl->etag));
		}
		free(sl->msg);
		sl->msg = NULL;
	}
}

/* The first failed part's error, as this thread's (under w->mu). */
static int parts_error(s3_writer *w)
{
	if (!w->part_rc)
		return 0;
	w->failed = 1;
	return gw_error_set(w->part_rc, "%s", w->part_msg ? w->part_msg : "a part's upload failed");
}

/* Wait until no part is in flight; the first failure, if any. */
static int parts_wait(s3_writer *w)
{
	int rc;
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cond, &w->mu);
	parts_reap(w);
	rc = parts_error(w);
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Free the slots past the first (all idle) and give their budget back. */
static void slots_shrink(s3_writer *w)
{
	while (w->nslots > 1) {
		w_slot *sl = w->slots[--w->nslots];
		s3_buf_dispose(&sl->buf);
		free(sl->msg); /* a failed part's message the writer never reaped */
		free(sl);
		s3_budget_give(w->s3, w->slot_size);
	}
}

/*
 * An idle slot for the next part: one that came back, a new one while
 * fewer than parallel= are made (past the first, only with room in the
 * store's budget), else wait for one to come back. NULL on a failed part
 * or no memory.
 */
static int slot_get(s3_writer *w, w_slot **out)
{
	size_t part = part_size_for(w->nparts), i;
	int rc = 0;

	if (part != w->slot_size && w->nslots > 1) {
		/* Parts grow (every PART_SIZE_GROWTH parts): the budget is charged again at the new size. */
		if ((rc = parts_wait(w)) < 0)
			return rc;
		slots_shrink(w);
	}
	w->slot_size = part;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		parts_reap(w);
		if ((rc = parts_error(w)) < 0)
			break;
		for (i = 0; i < w->nslots; i++)
			if (!w->slots[i]->busy) {
				pthread_mutex_unlock(&w->mu);
				*out = w->slots[i];
				return 0;
			}
		if (w->nslots < (size_t)w->s3->cfg.parallel &&
		    (w->nslots == 0 || s3_budget_take(w->s3, part, 0))) {
			w_slot *sl = calloc(1, sizeof(*sl));
			if (!sl) {
				if (w->nslots)
					s3_budget_give(w->s3, part);
				rc = oom();
				break;
			}
			sl->job.run = part_run;
			sl->w = w;
			w->slots[w->nslots++] = sl;
			pthread_mutex_unlock(&w->mu);
			*out = sl;
			return 0;
		}
		/* Every part buffer is in flight: the caller waits for one (backpressure). */
		pthread_cond_wait(&w->cond, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Hand the filled buffer to a transfer thread; the caller fills another meanwhile. */
static int part_send(s3_writer *w)
{
	s3_buf tmp;
	w_slot *sl = NULL;
	int rc;

	if (!w->upload_id && (rc = multipart_start(w)) < 0)
		return rc;
	if (w->nparts >= MAX_PARTS)
		return gw_error_set(GW_EINVALID, "store %s: key %s: more than %d parts", w->s3->url, w->base.key,
				    MAX_PARTS);
	/* Only the writer's thread touches etags (parts_reap copies the finished parts' in). */
	if ((rc = GW_ARRAY_RESERVE(w->etags, w->etags_cap, w->nparts + 1)) < 0)
		return rc;
	if ((rc = slot_get(w, &sl)) < 0)
		return rc;
	w->total += w->fill.len;
	tmp = sl->buf;
	sl->buf = w->fill;
	w->fill = tmp;
	w->fill.len = 0;
	sl->number = ++w->nparts;
	pthread_mutex_lock(&w->mu);
	sl->busy = 1;
	w->busy++;
	pthread_mutex_unlock(&w->mu);
	s3_xfer_submit(w->s3, &sl->job);
	return 0;
}

static int s3_write(gw_store_writer *base, const void *buf, size_t len)
{
	s3_writer *w = (s3_writer *)base;
	const unsigned char *p = buf;
	int rc;

	if (w->done || w->failed)
		return gw_error_set(GW_ERROR, "store %s: key %s: write after %s", w->s3->url, base->key,
				    w->done ? "commit" : "a failure");
	while (len) {
		size_t part = part_size_for(w->nparts), room, n;
		if (w->fill.len == part && (rc = part_send(w)) < 0) {
			w->failed = 1;
			return rc;
		}
		room = part - w->fill.len;
		n = len < room ? len : room;
		if (w->fill.len + n > w->fill.cap) {
			size_t cap = w->fill.cap ? w->fill.cap : 64 * 1024;
			while (cap < w->fill.len + n)
				cap *= 2;
			if (s3_buf_reserve(&w->fill, cap < part ? cap : part) < 0) {
				w->failed = 1;
				return GW_ERROR;
			}
		}
		memcpy(w->fill.data + w->fill.len, p, n);
		w->fill.len += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* What a creating request should have stored, for object_landed. */
typedef struct {
	uint64_t size;
	char etag[80]; /* as S3 quotes it; "" when it cannot be known (then the size alone decides) */
} landed_want;

/*
 * landed_check of a creating request (s3_request.landed_check): 1 when the
 * key holds the object this request stores (size and ETag: the MD5, or for
 * a multipart upload the MD5 of its parts' MD5s and "-N"), 0 when the key
 * is free, GW_EEXISTS when another object is there. The latest version is
 * the one a lost answer would have made (nothing else writes the key).
 */
static int object_landed(gw_s3 *s3, s3_request *req, void *payload)
{
	const landed_want *want = payload;
	s3_request head;
	int exists, rc;

	if ((rc = key_exists(s3, req->key, &exists, &head)) < 0)
		return rc;
	if (!exists)
		return 0;
	if (head.content_length == want->size && (!want->etag[0] || !strcasecmp(head.etag, want->etag))) {
		memcpy(req->version_id, head.version_id, sizeof(req->version_id));
		return 1;
	}
	return gw_error_set(GW_EEXISTS, GW_STORE_MSG_EXISTS, req->key, s3->url);
}

static int commit_put(s3_writer *w)
{
	s3_request req = {.method = "PUT", .key = w->base.key, .ok_status = {412}};
	landed_want want = {.size = w->fill.len};
	unsigned char md5[16];
	char lock[2][96], hex[40];
	int rc;

	/* Unversioned buckets refuse through If-None-Match; versioned ones need the check. */
	if ((rc = refuse_existing(w->s3, w->base.key, 0)) < 0)
		return rc;
	req.headers[0] = "If-None-Match: *";
	lock_headers(w->s3, &req, 1, lock);
	req.body = w->fill.data ? (const void *)w->fill.data : "";
	req.body_len = w->fill.len;
	req.unsigned_payload = 1;
	EVP_Digest(req.body, req.body_len, md5, NULL, EVP_md5(), NULL);
	req.md5 = md5;
	gw_hex_encode(hex, md5, 16);
	snprintf(want.etag, sizeof(want.etag), "\"%s\"", hex);
	req.landed_check = object_landed;
	req.landed_payload = &want;
	rc = s3_request_run(w->s3, &req);
	/* 412 to a second send: the first may have landed after the check (a slow server). */
	if (rc == 0 && req.status == 412 && !(req.attempts > 1 && object_landed(w->s3, &req, &want) == 1))
		rc = gw_error_set(GW_EEXISTS, GW_STORE_MSG_EXISTS, w->base.key, w->s3->url);
	s3_request_dispose(&req);
	return rc;
}

/* The ETag S3 gives a multipart object: MD5 of the parts' MD5s, "-" and their count; "" when a part's is no MD5. */
static void multipart_etag(const s3_writer *w, char *out, size_t size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char d[16];
	char hex[40];
	unsigned i, n;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1;

	out[0] = '\0';
	for (i = 0; i < w->nparts && ok; i++) {
		const char *e = w->etags[i];
		size_t len = strlen(e);
		if (len == 34 && e[0] == '"' && e[33] == '"') {
			e++;
			len = 32;
		}
		ok = len == 32 && gw_hex_decode(d, e, 16) == 0 && EVP_DigestUpdate(ctx, d, 16) == 1;
	}
	if (ok && EVP_DigestFinal_ex(ctx, d, &n) == 1) {
		gw_hex_encode(hex, d, 16);
		snprintf(out, size, "\"%s-%u\"", hex, w->nparts);
	}
	EVP_MD_CTX_free(ctx);
}

/*
 * radosgw 16 drops the lock headers of CreateMultipartUpload (AWS applies
 * them), leaving the completed object unlocked. So check, and set the same
 * retention on the new version when it is missing: locked moments after
 * completion instead of never.
 */
static int retention_ensure(s3_writer *w, const char *version_id)
{
	static const char ns[] = "http://s3.amazonaws.com/doc/2006-03-01/";
	s3_param params[2] = {{"retention", NULL}, {"versionId", version_id}};
	s3_request req = {.method = "HEAD", .key = w->base.key};
	char body[400], *query;
	int rc;

	if ((rc = s3_request_run(w->s3, &req)) < 0)
		return rc;
	s3_request_dispose(&req);
	if (req.retain_until)
		return 0;
	/* The headers' values: "x-amz-object-lock-mode: MODE", "...-retain-until-date: DATE". */
	snprintf(body, sizeof(body), "<Retention xmlns=\"%s\"><Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
		 ns, strchr(w->lock[0], ':') + 2, strchr(w->lock[1], ':') + 2);
	if (!(query = s3_query_build(params, version_id[0] ? 2 : 1)))
		return oom();
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.key = w->base.key;
	req.query = query;
	req.body = body;
	req.body_len = strlen(body);
	rc = s3_request_run(w->s3, &req);
	s3_request_dispose(&req);
	free(query);
	if (rc < 0)
		gw_error_prefix("store %s: key %s was stored but its Object Lock retention could not be set", w->s3->url,
				w->base.key);
	return rc;
}

static int commit_multipart(s3_writer *w)
{
	s3_param params[1] = {{"uploadId", w->upload_id}};
	s3_request req = {.method = "POST", .key = w->base.key};
	landed_want want;
	s3_buf xml = {0};
	char line[160], *query = NULL, *code = NULL;
	unsigned i;
	int rc;

	if (w->fill.len && (rc = part_send(w)) < 0)
		return rc;
	if ((rc = parts_wait(w)) < 0)
		return rc;
	/* radosgw ignores If-None-Match on completion, in any bucket: check here, as late as possible. */
	if ((rc = refuse_existing(w->s3, w->base.key, 1)) < 0)
		return rc;
	rc = s3_buf_append(&xml, "<CompleteMultipartUpload>", 25);
	for (i = 0; i < w->nparts && rc == 0; i++) {
		int n = snprintf(line, sizeof(line), "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
				 w->etags[i]);
		rc = s3_buf_append(&xml, line, (size_t)n);
	}
	if (rc < 0 || s3_buf_append(&xml, "</CompleteMultipartUpload>", 26) < 0 ||
	    !(query = s3_query_build(params, 1))) {
		s3_buf_dispose(&xml);
		return oom();
	}
	req.query = query;
	req.body = xml.data;
	req.body_len = xml.len;
	want.size = w->total;
	multipart_etag(w, want.etag, sizeof(want.etag));
	req.landed_check = object_landed;
	req.landed_payload = &want;
	rc = s3_request_run(w->s3, &req);
	/* S3 may answer 200 and still report a failure in the body. */
	if (rc == 0 && req.response->len &&
	    (rc = s3_xml_text(req.response->data, req.response->len, "Code", &code)) == 0 && code)
		rc = gw_error_set(GW_EIO, "store %s: key %s: CompleteMultipartUpload failed (%s)", w->s3->url,
				  w->base.key, code);
	if (rc == 0 && w->s3->cfg.lock_mode)
		rc = retention_ensure(w, req.version_id);
	free(code);
	free(query);
	s3_buf_dispose(&xml);
	s3_request_dispose(&req);
	return rc;
}

/* Leftovers: incomplete multipart uploads (DESIGN.md 2.2). */

typedef int (*upload_cb)(gw_s3 *s3, const char *object, const char *id, int64_t initiated, void *payload);

typedef struct {
	gw_s3 *s3;
	upload_cb cb;
	void *payload;
} upload_page;

static int upload_entry(const char *object, const char *id, int64_t initiated, void *payload)
{
	upload_page *p = payload;
	return p->cb(p->s3, object, id, initiated, p->payload);
}

/*
 * A listing paginated by two markers: ListMultipartUploads (key and upload id)
 * and ListObjectVersions (key and version id). parse reads one page and gives
 * the next markers when it is truncated; a positive return from it ends the
 * listing early, as success.
 */
typedef int (*page_parse)(const s3_buf *page, void *payload, int *truncated, char **next_key, char **next_second);

static int list_paged(gw_s3 *s3, const char *kind, const char *prefix, const char *second_name, page_parse parse,
		      void *payload)
{
	char *key_marker = NULL, *second_marker = NULL;
	int truncated = 1, rc = 0;
	while (truncated && rc == 0) {
		s3_param params[4] = {{kind, NULL}, {"prefix", prefix}};
		s3_request req = {.method = "GET"};
		s3_buf page = {.max = LIST_PAGE_MAX};
		char *query, *nk = NULL, *ns = NULL;
		size_t np = 2;
		if (key_marker) {
			params[np++] = (s3_param){"key-marker", key_marker};
			if (second_marker)
				params[np++] = (s3_param){second_name, second_marker};
		}
		if (!(query = s3_query_build(params, np))) {
			rc = oom();
			break;
		}
		req.query = query;
		req.response = &page;
		if ((rc = s3_request_run(s3, &req)) == 0 && (rc = parse(&page, payload, &truncated, &nk, &ns)) > 0) {
			rc = 0;
			truncated = 0;
		}
		free(key_marker);
		free(second_marker);
		key_marker = nk;
		second_marker = ns;
		free(query);
		s3_buf_dispose(&page);
		s3_request_dispose(&req);
	}
	free(key_marker);
	free(second_marker);
	return rc;
}

static int uploads_page(const s3_buf *page, void *payload, int *truncated, char **next_key, char **next_upload)
{
	return s3_xml_list_uploads(page->data, page->len, upload_entry, payload, truncated, next_key, next_upload);
}

/* Every incomplete multipart upload of an object under object_prefix (ListMultipartUploads, paginated). */
static int list_uploads(gw_s3 *s3, const char *object_prefix, upload_cb cb, void *payload)
{
	upload_page page = {s3, cb, payload};
	return list_paged(s3, "uploads", object_prefix, "upload-id-marker", uploads_page, &page);
}

/* An upload this old, and not this store's own, is a dead writer's. */
static int upload_stale(gw_s3 *s3, const char *id, int64_t initiated)
{
	return (int64_t)time(NULL) - initiated >= s3->cfg.upload_max_age && !upload_mine(s3, id);
}

static int abort_upload(gw_s3 *s3, const char *object, const char *id)
{
	s3_param params[1] = {{"uploadId", id}};
	s3_request req = {.method = "DELETE", .object = object, .ok_status = {404}};
	char *query = s3_query_build(params, 1);
	int rc;
	if (!query)
		return oom();
	req.query = query;
	rc = s3_request_run(s3, &req);
	s3_request_dispose(&req);
	free(query);
	return rc;
}

static int abort_if_stale(gw_s3 *s3, const char *object, const char *id, int64_t initiated, void *payload)
{
	(void)payload;
	if (upload_stale(s3, id, initiated))
		abort_upload(s3, object, id); /* best effort: the next run tries again */
	return 0;
}

/*
 * The first commit of this store object under a directory of keys (the key
 * up to its last '/') aborts the stale uploads there: one listing per
 * directory and process, and only once the store answers (after a commit).
 */
static void abort_stale_once(gw_s3 *s3, const char *key)
{
	const char *slash = strrchr(key, '/');
	char *dir = strndup(key, slash ? (size_t)(slash - key) + 1 : 0), *object = NULL;
	int code = gw_error_code();
	char saved[1024];
	snprintf(saved, sizeof(saved), "%s", gw_error_message());
	if (dir && gw_owner_cleared_add(&s3->cleared, dir) == 1 && (object = object_name(s3, dir)))
		list_uploads(s3, object, abort_if_stale, NULL);
	free(object);
	free(dir);
	gw_error_set(code, "%s", saved);
}

static int s3_commit(gw_store_writer *base)
{
	s3_writer *w = (s3_writer *)base;
	int rc;
	if (w->done)
		return gw_error_set(GW_ERROR, "store %s: key %s committed twice", w->s3->url, base->key);
	if (w->failed)
		return gw_error_set(GW_ERROR, "store %s: key %s: cannot commit after a failed write", w->s3->url,
				    base->key);
	if ((rc = ensure_probed(base->store)) < 0)
		return rc; /* not failed: the store may come back */
	rc = w->upload_id ? commit_multipart(w) : commit_put(w);
	if (rc < 0)
		w->failed = 1;
	else
		w->done = 1;
	if (rc == 0)
		abort_stale_once(w->s3, base->key);
	return rc;
}

static void multipart_abort(s3_writer *w)
{
	s3_param params[1] = {{"uploadId", w->upload_id}};
	s3_request req = {.method = "DELETE", .key = w->base.key, .ok_status = {404}};
	char saved[1024], *query = s3_query_build(params, 1);
	int code = gw_error_code();

	/* The caller reports the error that led here, not the abort's. */
	snprintf(saved, sizeof(saved), "%s", gw_error_message());
	if (query) {
		req.query = query;
		s3_request_run(w->s3, &req);
		s3_request_dispose(&req);
		free(query);
	}
	gw_error_set(code, "%s", saved);
}

static void s3_writer_free(gw_store_writer *base)
{
	s3_writer *w = (s3_writer *)base;
	size_t i;
	if (!w->done) {
		/* Nothing of it will be used: parts in flight stop, and the upload is aborted once none is. */
		__atomic_store_n(&w->cancel, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cond, &w->mu);
	pthread_mutex_unlock(&w->mu);
	if (w->upload_id && !w->done)
		multipart_abort(w);
	if (w->upload_id)
		upload_track(w->s3, w->upload_id, 0);
	slots_shrink(w);
	for (i = 0; i < w->nslots; i++) {
		s3_buf_dispose(&w->slots[i]->buf);
		free(w->slots[i]->msg);
		free(w->slots[i]);
	}
	free(w->part_msg);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	s3_buf_dispose(&w->fill);
	free(w->upload_id);
	free(w->etags);
	free(base->key);
	free(w);
}

/* Readers. */

static int s3_read_open(gw_store_reader **out, gw_store *store, const char *key, uint64_t offset, uint64_t length)
{
	gw_s3 *s3 = impl(store);
	s3_request head;
	s3_reader *r;
	int exists, rc;

	if ((rc = key_exists(s3, key, &exists, &head)) < 0)
		return rc;
	if (!exists)
		return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, s3->url);
	if (offset > head.content_length)
		return gw_error_set(GW_EINVALID, "store %s: key %s: offset %llu past its end (%llu bytes)", s3->url, key,
				    (unsigned long long)offset, (unsigned long long)head.content_length);
	if (!(r = calloc(1, sizeof(*r))) || !(r->base.key = strdup(key))) {
		free(r);
		return oom();
	}
	r->base.store = store;
	r->base.size = head.content_length;
	r->s3 = s3;
	r->pos = r->next = offset;
	r->end = length == GW_STORE_TO_END || length > head.content_length - offset ? head.content_length
										      : offset + length;
	memcpy(r->etag, head.etag, sizeof(r->etag));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	*out = &r->base;
	return 0;
}

/* GET one range into its slot (on the caller's thread or a transfer thread). */
static int range_get(s3_reader *r, r_slot *sl)
{
	s3_request req = {.method = "GET", .key = r->base.key, .cancel = &r->cancel};
	char range[80], match[120];
	int rc;

	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", (unsigned long long)sl->at,
		 (unsigned long long)(sl->at + sl->want - 1));
	req.headers[0] = range;
	if (r->etag[0]) {
		snprintf(match, sizeof(match), "If-Match: %s", r->etag);
		req.headers[1] = match;
	}
	sl->buf.len = 0;
	sl->buf.max = READ_CHUNK;
	sl->off = 0;
	if (s3_buf_reserve(&sl->buf, sl->want) < 0)
		return GW_ERROR;
	req.response = &sl->buf;
	req.expect_bytes = sl->want;
	req.ok_status[0] = 412;
	rc = s3_request_run(r->s3, &req);
	if (rc == 0 && req.status == 412)
		rc = gw_error_set(GW_ECHANGED, "store %s: key %s changed while it was read (ETag %s)", r->s3->url,
				  r->base.key, r->etag);
	else if (rc == 0 && sl->buf.len != sl->want)
		rc = gw_error_set(GW_EIO, "store %s: key %s: asked for %zu bytes at %llu, got %zu", r->s3->url,
				  r->base.key, sl->want, (unsigned long long)sl->at, sl->buf.len);
	if (rc < 0)
		sl->buf.len = 0;
	s3_request_dispose(&req);
	return rc;
}

/* On a transfer thread: fetch one range, then hand the slot back. */
static void range_run(s3_job *job)
{
	r_slot *sl = (r_slot *)job;
	s3_reader *r = sl->r;
	int rc = range_get(r, sl);
	char *msg = rc < 0 ? strdup(gw_error_message()) : NULL;
	pthread_mutex_lock(&r->mu);
	sl->rc = rc;
	sl->msg = msg;
	sl->busy = 0;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

/* Point the slot at the next range [next, next + READ_CHUNK) and, threaded, send it off. */
static void range_issue(s3_reader *r, r_slot *sl)
{
	sl->at = r->next;
	sl->want = r->end - r->next < READ_CHUNK ? (size_t)(r->end - r->next) : READ_CHUNK;
	sl->buf.len = sl->off = 0;
	sl->rc = 0;
	r->next += sl->want;
	if (!r->threaded)
		return;
	pthread_mutex_lock(&r->mu);
	sl->busy = 1;
	pthread_mutex_unlock(&r->mu);
	s3_xfer_submit(r->s3, &sl->job);
}

/*
 * At the first read: one slot fetched on the caller's thread for a range of
 * one chunk (or parallel=1); else parallel= slots in flight at once (past
 * the first, as the store's budget allows), each refilled with the next
 * range once its bytes are handed out.
 */
static int ranges_start(s3_reader *r)
{
	uint64_t chunks = (r->end - r->pos + READ_CHUNK - 1) / READ_CHUNK;
	size_t want = (size_t)(chunks < (uint64_t)r->s3->cfg.parallel ? chunks : (uint64_t)r->s3->cfg.parallel), i;

	r->started = 1;
	if (!want)
		return 0;
	r->threaded = want > 1;
	if (!(r->slots = calloc(want, sizeof(*r->slots))))
		return oom();
	for (r->nslots = 1; r->nslots < want && s3_budget_take(r->s3, READ_CHUNK, 0); r->nslots++)
		r->charged += READ_CHUNK;
	r->threaded = r->nslots > 1;
	for (i = 0; i < r->nslots; i++) {
		r->slots[i].job.run = range_run;
		r->slots[i].r = r;
		range_issue(r, &r->slots[i]);
	}
	return 0;
}

/*
 * The slot's bytes, once they are there: fetched now on the caller's
 * thread, or waited for (a slot in flight is the transfer thread's: nothing
 * of it is looked at before it comes back).
 */
static int slot_ready(s3_reader *r, r_slot *sl)
{
	if (!r->threaded)
		return sl->buf.len ? 0 : range_get(r, sl);
	pthread_mutex_lock(&r->mu);
	while (sl->busy)
		pthread_cond_wait(&r->cond, &r->mu);
	pthread_mutex_unlock(&r->mu);
	if (sl->rc < 0)
		return gw_error_set(sl->rc, "%s", sl->msg ? sl->msg : "a ranged read failed");
	return 0;
}

static ssize_t s3_read(gw_store_reader *base, void *buf, size_t len)
{
	s3_reader *r = (s3_reader *)base;
	r_slot *sl;
	size_t n;
	int rc;

	if (r->pos == r->end)
		return 0;
	if (!r->started && (rc = ranges_start(r)) < 0)
		return rc;
	sl = &r->slots[r->head];
	if ((rc = slot_ready(r, sl)) < 0)
		return rc;
	if (sl->off == sl->buf.len) {
		/* Its bytes are handed out: the next range goes into it, and the slot after holds pos. */
		if (r->next < r->end)
			range_issue(r, sl);
		r->head = (r->head + 1) % r->nslots;
		sl = &r->slots[r->head];
		if ((rc = slot_ready(r, sl)) < 0)
			return rc;
	}
	n = sl->buf.len - sl->off < len ? sl->buf.len - sl->off : len;
	memcpy(buf, sl->buf.data + sl->off, n);
	sl->off += n;
	r->pos += n;
	return (ssize_t)n;
}

static void s3_reader_free(gw_store_reader *base)
{
	s3_reader *r = (s3_reader *)base;
	size_t i;
	/* Ranges still in flight are not wanted any more. */
	__atomic_store_n(&r->cancel, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nslots; i++)
		while (r->slots[i].busy)
			pthread_cond_wait(&r->cond, &r->mu);
	pthread_mutex_unlock(&r->mu);
	for (i = 0; i < r->nslots; i++) {
		s3_buf_dispose(&r->slots[i].buf);
		free(r->slots[i].msg);
	}
	free(r->slots);
	s3_budget_give(r->s3, r->charged);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(base->key);
	free(r);
}

/* Versions of one key, in ListObjectVersions order (newest first). */
typedef struct {
	const char *object;
	unsigned versions;
	char **ids; /* when collecting */
	size_t nids, cap;
	int collect;
	int past; /* listing went past the key: stop */
} version_scan;

static int version_cb(const char *key, const char *version_id, int delete_marker, void *payload)
{
	version_scan *v = payload;
	int cmp = strcmp(key, v->object);
	if (cmp > 0) {
		v->past = 1;
		return 1;
	}
	if (cmp < 0)
		return 0;
	if (!delete_marker)
		v->versions++;
	if (v->collect) {
		if (GW_ARRAY_RESERVE(v->ids, v->cap, v->nids + 1) < 0)
			return GW_ERROR;
		if (!(v->ids[v->nids] = strdup(version_id)))
			return oom();
		v->nids++;
	}
	return 0;
}

static int scan_versions(gw_s3 *s3, const char *key, version_scan *v)
{
	char *key_marker = NULL, *version_marker = NULL;
	int truncated = 1, rc = 0;

	if (!(v->object = object_name(s3, key)))
		return oom();
	while (truncated && !v->past && rc == 0) {
		s3_param params[4] = {{"versions", NULL}, {"prefix", v->object}};
		size_t np = 2;
		s3_request req = {.method = "GET", .key = NULL};
		char *query, *nk = NULL, *nv = NULL;
		if (key_marker) {
			params[np++] = (s3_param){"key-marker", key_marker};
			if (version_marker)
				params[np++] = (s3_param){"version-id-marker", version_marker};
		}
		if (!(query = s3_query_build(params, np))) {
			rc = oom();
			break;
		}
		req.query = query;
		if ((rc = s3_request_run(s3, &req)) == 0)
			rc = s3_xml_list_versions(req.response->data, req.response->len, version_cb, v, &truncated, &nk,
						  &nv);
		if (rc > 0)
			rc = 0; /* the callback stopped past the key */
		free(key_marker);
		free(version_marker);
		key_marker = nk;
		version_marker = nv;
		free(query);
		s3_request_dispose(&req);
	}
	free(key_marker);
	free(version_marker);
	free((char *)v->object);
	v->object = NULL;
	return rc;
}

static void version_scan_dispose(version_scan *v)
{
	size_t i;
	for (i = 0; i < v->nids; i++)
		free(v->ids[i]);
	free(v->ids);
}

static int s3_stat(gw_store *store, const char *key, gw_store_stat *st)
{
	gw_s3 *s3 = impl(store);
	version_scan v = {0};
	s3_request head;
	int exists, rc;

	if ((rc = ensure_probed(store)) < 0 || (rc = key_exists(s3, key, &exists, &head)) < 0)
		return rc;
	if (!exists)
		return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, s3->url);
	st->size = head.content_length;
	st->mtime = head.last_modified;
	st->retain_until = head.retain_until;
	/*
	 * A breach only where this store should enforce write-once and did not:
	 * locked with less retention than configured when it was created (a
	 * minute of slack for clocks). No retention at all is the audit's
	 * "retention" fact; a plain bucket enforces nothing (the audit says so
	 * once); retention that ran out as configured is no breach.
	 */
	st->writable = s3->cfg.lock_mode && head.retain_until &&
		       head.retain_until + 60 < head.last_modified + s3->cfg.retain_seconds;
	st->versions = 1;
	if (s3->versioned) {
		if ((rc = scan_versions(s3, key, &v)) < 0)
			return rc;
		st->versions = v.versions ? v.versions : 1;
	}
	return 0;
}

/* Listing. */

typedef struct {
	gw_s3 *s3;
	size_t strip; /* the store prefix and its '/' */
	gw_store_list_cb cb;
	void *payload;
} list_state;

static int list_entry(const char *object, uint64_t size, void *payload)
{
	list_state *l = payload;
	const char *key = object + l->strip;
	gw_store_entry e;
	if (strlen(object) < l->strip)
		return 0;
	/* Names that are not store keys (another tool's objects) are not ours to list. */
	if (gw_store_key_check(key) < 0) {
		gw_error_clear();
		return 0;
	}
	e.key = key;
	e.size = size;
	return l->cb(&e, l->payload);
}

static int s3_list(gw_store *store, const char *prefix, const char *after, gw_store_list_cb cb, void *payload)
{
	gw_s3 *s3 = impl(store);
	list_state l = {s3, s3->cfg.prefix[0] ? strlen(s3->cfg.prefix) + 1 : 0, cb, payload};
	char *object_prefix = object_name(s3, prefix), *object_after = after ? object_name(s3, after) : NULL,
	     *token = NULL;
	int truncated = 1, rc = 0;

	if (!object_prefix || (after && !object_after)) {
		free(object_prefix);
		return oom();
	}
	while (truncated && rc == 0) {
		s3_param params[4] = {{"list-type", "2"}, {"prefix", object_prefix}};
		s3_request req = {.method = "GET"};
		s3_buf page = {.max = LIST_PAGE_MAX};
		char *query, *next = NULL;
		size_t np = 2;
		if (token)
			params[np++] = (s3_param){"continuation-token", token};
		else if (object_after)
			params[np++] = (s3_param){"start-after", object_after};
		if (!(query = s3_query_build(params, np))) {
			rc = oom();
			break;
		}
		req.query = query;
		req.response = &page;
		if ((rc = s3_request_run(s3, &req)) == 0)
			rc = s3_xml_list_objects(page.data, page.len, list_entry, &l, &truncated, &next);
		free(token);
		token = next;
		free(query);
		s3_buf_dispose(&page);
		s3_request_dispose(&req);
	}
	free(token);
	free(object_prefix);
	free(object_after);
	return rc;
}

typedef struct {
	size_t strip; /* the store prefix and its '/' */
	gw_store_stray_cb cb;
	void *payload;
} stray_state;

/* The bytes of an upload's parts so far (ListParts, paginated). */
static int upload_bytes(gw_s3 *s3, const char *object, const char *id, uint64_t *bytes)
{
	char *marker = NULL;
	int truncated = 1, rc = 0;
	*bytes = 0;
	while (truncated && rc == 0) {
		s3_param params[2] = {{"uploadId", id}};
		s3_request req = {.method = "GET", .object = object};
		char *query, *next = NULL;
		size_t np = 1;
		if (marker)
			params[np++] = (s3_param){"part-number-marker", marker};
		if (!(query = s3_query_build(params, np))) {
			rc = oom();
			break;
		}
		req.query = query;
		if ((rc = s3_request_run(s3, &req)) == 0)
			rc = s3_xml_list_parts(req.response->data, req.response->len, bytes, &truncated, &next);
		free(marker);
		marker = next;
		free(query);
		s3_request_dispose(&req);
	}
	free(marker);
	return rc;
}

static int stray_upload(gw_s3 *s3, const char *object, const char *id, int64_t initiated, void *payload)
{
	stray_state *st = payload;
	gw_store_stray s;
	char owner[200];
	const char *key = object + st->strip;
	memset(&s, 0, sizeof(s));
	if (strlen(object) < st->strip || gw_store_key_check(key) < 0) {
		gw_error_clear();
		return 0; /* another tool's upload */
	}
	if (upload_bytes(s3, object, id, &s.size) < 0) {
		gw_error_clear();
		return 0; /* completed or aborted meanwhile */
	}
	snprintf(owner, sizeof(owner),
		 "an unknown writer (S3 does not say whose; presumed dead after upload_max_age, %llds)",
		 (long long)s3->cfg.upload_max_age);
	s.kind = GW_STORE_STRAY_LEFTOVER;
	s.key = key;
	s.name = id;
	s.type = "incomplete upload";
	s.owner = owner;
	s.mtime = initiated;
	s.live = upload_mine(s3, id);
	s.removable = upload_stale(s3, id, initiated);
	return st->cb(&s, st->payload);
}

static int s3_strays(gw_store *store, const char *prefix, gw_store_stray_cb cb, void *payload)
{
	gw_s3 *s3 = impl(store);
	stray_state st = {s3->cfg.prefix[0] ? strlen(s3->cfg.prefix) + 1 : 0, cb, payload};
	char *object = object_name(s3, prefix);
	int rc;
	if (!object)
		return oom();
	rc = list_uploads(s3, object, stray_upload, &st);
	free(object);
	return rc;
}

static int s3_remove(gw_store *store, const char *key)
{
	gw_s3 *s3 = impl(store);
	version_scan v = {.collect = 1};
	size_t i;
	int exists, rc;

	if ((rc = ensure_probed(store)) < 0 || (rc = key_exists(s3, key, &exists, NULL)) < 0)
		return rc;
	if (!exists)
		return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, s3->url);
	if (!s3->versioned) {
		s3_request req = {.method = "DELETE", .key = key};
		rc = s3_request_run(s3, &req);
		s3_request_dispose(&req);
		return rc;
	}
	/* A plain DELETE would only add a delete marker: remove every version. */
	if ((rc = scan_versions(s3, key, &v)) < 0) {
		version_scan_dispose(&v);
		return rc;
	}
	for (i = 0; i < v.nids && rc == 0; i++) {
		s3_param params[1] = {{"versionId", v.ids[i]}};
		s3_request req = {.method = "DELETE", .key = key};
		char *query = s3_query_build(params, 1);
		if (!query) {
			rc = oom();
			break;
		}
		req.query = query;
		if ((rc = s3_request_run(s3, &req)) == GW_EAUTH && s3->cfg.lock_mode)
			gw_error_prefix("key %s is under Object Lock retention", key);
		free(query);
		s3_request_dispose(&req);
	}
	version_scan_dispose(&v);
	return rc;
}

/*
 * Retention's removals (gw_store_remove_batch; DESIGN.md 18.6, 18.8):
 * DeleteObjects, S3_DELETE_MAX objects per request. On a plain bucket the
 * keys themselves are named; on a versioned one a key's DELETE would only add
 * a delete marker, so its every version (delete markers included) is named,
 * found by listing the versions under the batch's common prefix from its
 * first key to its last: the listing and the requests follow what is
 * removed. A version the server refuses with AccessDenied is an Object Lock
 * retention (or legal hold): its retain-until date is read (HEAD of the
 * version) and the key reported GW_ELOCKED with it, not fatal; any other
 * refusal is reported for its key. Quiet mode: the answer lists refusals
 * only, so it stays small whatever the batch.
 */
#define S3_DELETE_MAX 1000

typedef struct {
	const char *key;    /* the caller's */
	char *object;       /* the object name (the store prefix and the key) */
	gw_store_removal r; /* what happened: rc 0 until a version is refused */
	int reported;
} del_key;

typedef struct {
	size_t key;       /* index into the sorted del_key array */
	char *version_id; /* NULL on a plain bucket */
} del_version;

typedef struct {
	gw_s3 *s3;
	int64_t now_s;
	del_key *keys;
	size_t nkeys;
	del_version *versions;
	size_t nversions, vcap;
	char *prefix; /* the common prefix of the objects (for the version listing) */
	int past;     /* the version listing went past the last object */
} del_batch;

static int del_key_cmp(const void *a, const void *b)
{
	return strcmp(((const del_key *)a)->object, ((const del_key *)b)->object);
}

static del_key *del_find(del_batch *d, const char *object)
{
	del_key probe = {.object = (char *)object};
	return bsearch(&probe, d->keys, d->nkeys, sizeof(*d->keys), del_key_cmp);
}

static int del_add_version(del_batch *d, size_t key, const char *version_id)
{
	del_version *v;
	if (GW_ARRAY_RESERVE(d->versions, d->vcap, d->nversions + 1) < 0)
		return GW_ERROR;
	v = &d->versions[d->nversions];
	v->key = key;
	v->version_id = NULL;
	if (version_id && !(v->version_id = strdup(version_id)))
		return oom();
	d->nversions++;
	return 0;
}

static int del_version_cb(const char *object, const char *version_id, int delete_marker, void *payload)
{
	del_batch *d = payload;
	del_key *k;
	(void)delete_marker; /* a delete marker is a version too: it goes with the rest */
	if (strcmp(object, d->keys[d->nkeys - 1].object) > 0) {
		d->past = 1;
		return 1;
	}
	if (!(k = del_find(d, object)))
		return 0; /* another key under the prefix, not removed in this batch */
	return del_add_version(d, (size_t)(k - d->keys), version_id);
}

static int versions_page(const s3_buf *page, void *payload, int *truncated, char **next_key, char **next_version)
{
	return s3_xml_list_versions(page->data, page->len, del_version_cb, payload, truncated, next_key, next_version);
}

/* Every version of the batch's objects, in key order (ListObjectVersions lists a key's versions together). */
static int del_list_versions(del_batch *d)
{
	return list_paged(d->s3, "versions", d->prefix, "version-id-marker", versions_page, d);
}

/* Append text with XML's five special characters escaped. */
static int xml_append(s3_buf *b, const char *text)
{
	int rc = 0;
	for (; *text && rc == 0; text++) {
		const char *e = *text == '&' ? "&amp;" : *text == '<' ? "&lt;" : *text == '>' ? "&gt;"
			      : *text == '"' ? "&quot;" : *text == '\'' ? "&apos;" : NULL;
		rc = e ? s3_buf_append(b, e, strlen(e)) : s3_buf_append(b, text, 1);
	}
	return rc;
}

/* Why a version was refused: Object Lock retention (GW_ELOCKED with its dates) or the server's words. */
static void del_refused(del_batch *d, del_key *k, const char *version_id, const char *code, const char *message)
{
	char *msg;
	if (!strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchVersion"))
		return; /* gone already: removed is what was asked */
	if (!strcmp(code, "AccessDenied") && d->s3->versioned) {
		s3_param params[1] = {{"versionId", version_id}};
		s3_request head = {.method = "HEAD", .key = k->key, .ok_status = {404}};
		char *query = version_id ? s3_query_build(params, 1) : NULL;
		head.query = query;
		if ((!version_id || query) && s3_request_run(d->s3, &head) == 0 && head.status != 404 &&
		    head.retain_until > d->now_s) {
			/* The latest date of its versions: the key is gone only when every one may go. */
			if (k->r.rc != GW_ELOCKED || head.retain_until > k->r.retain_until) {
				k->r.retain_until = head.retain_until;
				k->r.created = head.last_modified;
			}
			if (k->r.rc == 0 || k->r.rc == GW_ELOCKED) {
				k->r.rc = GW_ELOCKED;
				free((char *)k->r.message);
				k->r.message = strdup("under Object Lock retention");
			}
			gw_error_clear();
			free(query);
			s3_request_dispose(&head);
			return;
		}
		gw_error_clear();
		free(query);
		s3_request_dispose(&head);
	}
	if (k->r.rc != 0 && k->r.rc != GW_ELOCKED)
		return; /* the first refusal says why */
	if (asprintf(&msg, "removal refused by store %s (%s: %s)", d->s3->url, code, message) < 0)
		msg = NULL;
	free((char *)k->r.message);
	k->r.message = msg;
	k->r.rc = !strcmp(code, "AccessDenied") ? GW_EAUTH : GW_ERROR;
}

static int del_error_cb(const char *object, const char *version_id, const char *code, const char *message,
			void *payload)
{
	del_batch *d = payload;
	del_key *k = del_find(d, object);
	if (k)
		del_refused(d, k, version_id, code, message);
	return 0; /* an object not asked for: nothing of ours */
}

/* One DeleteObjects request for versions [from, to). */
static int del_send(del_batch *d, size_t from, size_t to)
{
	static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
				   "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>";
	s3_buf body = {0};
	s3_request req = {.method = "POST", .query = "delete="};
	size_t i;
	int rc = s3_buf_append(&body, head, sizeof(head) - 1);
	for (i = from; i < to && rc == 0; i++) {
		const del_version *v = &d->versions[i];
		if ((rc = s3_buf_append(&body, "<Object><Key>", 13)) == 0 &&
		    (rc = xml_append(&body, d->keys[v->key].object)) == 0 &&
		    (rc = s3_buf_append(&body, "</Key>", 6)) == 0 && v->version_id &&
		    (rc = s3_buf_append(&body, "<VersionId>", 11)) == 0 && (rc = xml_append(&body, v->version_id)) == 0)
			rc = s3_buf_append(&body, "</VersionId>", 12);
		if (rc == 0)
			rc = s3_buf_append(&body, "</Object>", 9);
	}
	if (rc == 0)
		rc = s3_buf_append(&body, "</Delete>", 9);
	if (rc < 0) {
		s3_buf_dispose(&body);
		return oom();
	}
	req.body = body.data;
	req.body_len = body.len;
	req.upload = 1;
	if ((rc = s3_request_run(d->s3, &req)) == 0)
		rc = s3_xml_delete_result(req.response->data, req.response->len, del_error_cb, d);
	if (rc < 0)
		gw_error_prefix("removing %zu objects (DeleteObjects)", to - from);
	s3_request_dispose(&req);
	s3_buf_dispose(&body);
	return rc;
}

/* Tell the caller about every key before `upto` (sorted order) not yet told; non-zero from cb stops. */
static int del_report(del_batch *d, size_t upto, gw_store_removal_cb cb, void *payload)
{
	size_t i;
	int stop;
	for (i = 0; i < upto; i++) {
		if (d->keys[i].reported)
			continue;
		d->keys[i].reported = 1;
		if ((stop = cb(&d->keys[i].r, payload)) != 0)
			return stop;
	}
	return 0;
}

static void del_dispose(del_batch *d)
{
	size_t i;
	for (i = 0; i < d->nkeys; i++) {
		free(d->keys[i].object);
		free((char *)d->keys[i].r.message);
	}
	for (i = 0; i < d->nversions; i++)
		free(d->versions[i].version_id);
	free(d->keys);
	free(d->versions);
	free(d->prefix);
}

static int s3_remove_batch(gw_store *store, const char *const *keys, size_t n, int64_t now_s, gw_store_removal_cb cb,
			   void *payload)
{
	gw_s3 *s3 = impl(store);
	del_batch d;
	size_t i, j, plen;
	int rc;

	memset(&d, 0, sizeof(d));
	d.s3 = s3;
	d.now_s = now_s;
	if (!n)
		return 0;
	if ((rc = ensure_probed(store)) < 0)
		return rc;
	if (!(d.keys = calloc(n, sizeof(*d.keys))))
		return oom();
	for (i = 0; i < n; i++) {
		d.keys[i].key = keys[i];
		d.keys[i].r.key = keys[i];
		if (!(d.keys[i].object = object_name(s3, keys[i]))) {
			d.nkeys = i;
			del_dispose(&d);
			return oom();
		}
	}
	/* Sorted, each key once: the version listing comes in this order, and bsearch finds its entries. */
	qsort(d.keys, n, sizeof(*d.keys), del_key_cmp);
	for (i = 0, j = 0; i < n; i++) {
		if (j && !strcmp(d.keys[j - 1].object, d.keys[i].object)) {
			free(d.keys[i].object);
			continue;
		}
		d.keys[j++] = d.keys[i];
	}
	d.nkeys = j;
	if (!s3->versioned) {
		for (i = 0; i < d.nkeys && rc == 0; i++)
			rc = del_add_version(&d, i, NULL);
	} else {
		const char *first = d.keys[0].object, *last = d.keys[d.nkeys - 1].object;
		for (plen = 0; first[plen] && first[plen] == last[plen]; plen++)
			;
		if (!(d.prefix = strndup(first, plen)))
			rc = oom();
		if (rc == 0)
			rc = del_list_versions(&d);
	}
	/* S3_DELETE_MAX versions a request; after each, the keys whose every version was in it are told. */
	for (i = 0; i < d.nversions && rc == 0; i = j) {
		j = i + S3_DELETE_MAX < d.nversions ? i + S3_DELETE_MAX : d.nversions;
		if ((rc = del_send(&d, i, j)) == 0)
			rc = del_report(&d, j < d.nversions ? d.versions[j].key : d.nkeys, cb, payload);
	}
	if (rc == 0)
		rc = del_report(&d, d.nkeys, cb, payload); /* keys without a version: not there, nothing to do */
	del_dispose(&d);
	return rc;
}

/*
 * gw_store_lock_period: the URL's retain= when gitwal locks each object
 * itself, else the bucket's default retention (GET ?object-lock=: Days or
 * Years, a year taken as 365 days), which only a versioned bucket can have.
 */
static int s3_lock_period(gw_store *store, int64_t *seconds)
{
	gw_s3 *s3 = impl(store);
	s3_request req = {.method = "GET", .query = "object-lock=", .ok_status = {404}};
	char *days = NULL, *years = NULL;
	int rc;
	*seconds = 0;
	if ((rc = ensure_probed(store)) < 0)
		return rc;
	if (s3->cfg.lock_mode) {
		*seconds = s3->cfg.retain_seconds;
		return 0;
	}
	if (!s3->versioned)
		return 0;
	if ((rc = s3_request_run(s3, &req)) == 0 && req.status == 200 &&
	    (rc = s3_xml_text(req.response->data, req.response->len, "Days", &days)) == 0 &&
	    (rc = s3_xml_text(req.response->data, req.response->len, "Years", &years)) == 0) {
		/* Bounded like retain=: at most 100 years, so nothing overflows. */
		long long n = days ? atoll(days) : years ? atoll(years) * 365 : 0;
		if (n > 0 && n <= 36500)
			*seconds = (int64_t)n * 86400;
	}
	free(days);
	free(years);
	s3_request_dispose(&req);
	return rc;
}

static void s3_health(gw_store *store, gw_store_health *out)
{
	s3_health_get(impl(store), out);
}

const gw_store_driver gw_store_driver_s3 = {
	.scheme = "s3",
	.features = 0, /* set per store at open: versioning and lock depend on the bucket and the URL */
	.open = s3_open,
	.free = s3_free,
	.write_open = s3_write_open,
	.write = s3_write,
	.commit = s3_commit,
	.writer_free = s3_writer_free,
	.read_open = s3_read_open,
	.read = s3_read,
	.reader_free = s3_reader_free,
	.stat = s3_stat,
	.list = s3_list,
	.strays = s3_strays,
	.remove = s3_remove,
	.remove_batch = s3_remove_batch,
	.lock_period = s3_lock_period,
	.health = s3_health,
};
