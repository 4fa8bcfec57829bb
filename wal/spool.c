/*
 * The archiver's local spool and its upload threads (see spool.h).
 *
 * One mutex guards the queues, the counters, the events and the health;
 * no store request is made while it is held. A repository's queue is
 * uploaded by one thread at a time (busy), head first, so the store gets a
 * repository's segments in LSN order; a failure sets that queue's own retry
 * time (exponential backoff) and the threads go on with the others.
 */
#include "wal/spool.h"
#include "util/thread.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/layout.h"
#include "gitwal/time.h"
#include "gitwal/repo.h"
#include "gitwal/segment.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000

typedef struct sitem {
	gw_spool_item info; /* info.pool is NULL: the spool's copy is pool */
	char *key;
	char *pool;
	struct sitem *next;
} sitem;

typedef struct srepo {
	char *rel;
	sitem *head, *tail;
	size_t n;
	int busy;    /* a thread uploads its head */
	int stopped; /* its head's LSN is taken: it waits for gw_spool_set_aside */
	int64_t retry_at_ms, backoff_ms;
	char *last_error; /* of its last failed upload, until one succeeds */
	int pinned;       /* its state is being loaded: uploaded files stay until gw_spool_pin(0) */
	char **kept;      /* ... those files' keys */
	size_t nkept, keptcap;
} srepo;

struct gw_spool {
	char *dir;
	gw_store *store; /* the spool itself */
	uint64_t max_bytes;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t bytes; /* of the queued segments */
	uint64_t count;
	srepo **repos;  /* sorted by rel; a repository stays once seen */
	size_t nrepos, cap, cursor;

	gw_store *target; /* the store uploads go to */
	gw_index *index;
	gw_metrics_archiver *metrics;
	pthread_t *threads;
	unsigned nthreads;
	int stopping;

	int healthy;
	srepo *turned_unhealthy; /* the repository whose failed upload made the store unhealthy, if one did */
	int64_t probe_at_ms, probe_backoff_ms;

	gw_spool_event *events;
	size_t nevents, evcap;
	int evfd;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define METRIC(s, field) ((s)->metrics ? (s)->metrics->field : NULL)

/* ---- queues (lock held) ---- */

static int srepo_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, (*(srepo *const *)elem)->rel);
}

static srepo *srepo_find(gw_spool *s, const char *rel)
{
	srepo **found = s->nrepos ? bsearch(rel, s->repos, s->nrepos, sizeof(srepo *), srepo_cmp) : NULL;
	return found ? *found : NULL;
}

static srepo *srepo_get(gw_spool *s, const char *rel)
{
	srepo *r = srepo_find(s, rel);
	size_t at;
	if (r)
		return r;
	if (GW_ARRAY_RESERVE(s->repos, s->cap, s->nrepos + 1) < 0)
		return NULL;
	if (!(r = calloc(1, sizeof(*r))) || !(r->rel = strdup(rel))) {
		free(r);
		return NULL;
	}
	for (at = s->nrepos; at > 0 && strcmp(s->repos[at - 1]->rel, rel) > 0; at--)
		;
	memmove(s->repos + at + 1, s->repos + at, (s->nrepos - at) * sizeof(srepo *));
	s->repos[at] = r;
	s->nrepos++;
	return r;
}

static void sitem_free(sitem *it)
{
	if (it) {
		free(it->key);
		free(it->pool);
		free(it);
	}
}

static int enqueue(gw_spool *s, const char *rel, const char *key, const gw_spool_item *info)
{
	srepo *r = srepo_get(s, rel);
	sitem *it = calloc(1, sizeof(*it));
	if (!r || !it || !(it->key = strdup(key)) || (info->pool && !(it->pool = strdup(info->pool)))) {
		sitem_free(it);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	it->info = *info;
	it->info.pool = NULL;
	if (r->tail)
		r->tail->next = it;
	else
		r->head = it;
	r->tail = it;
	r->n++;
	s->bytes += info->bytes;
	s->count++;
	return 0;
}

static void dequeue(gw_spool *s, srepo *r)
{
	sitem *it = r->head;
	if (!it)
		return;
	r->head = it->next;
	if (!r->head)
		r->tail = NULL;
	r->n--;
	s->bytes -= s->bytes < it->info.bytes ? s->bytes : it->info.bytes;
	s->count -= s->count ? 1 : 0;
	sitem_free(it);
}

static void post(gw_spool *s, gw_spool_event *ev)
{
	uint64_t one = 1;
	if (GW_ARRAY_RESERVE(s->events, s->evcap, s->nevents + 1) < 0) {
		gw_spool_event_dispose(ev); /* the event is lost, not the segment: the queue still has it */
		return;
	}
	s->events[s->nevents++] = *ev;
	if (s->evfd >= 0 && write(s->evfd, &one, sizeof(one)) < 0) {
		/* The counter is at its maximum: the loop is awake anyway. */
	}
}

/* by: the repository whose upload failed (NULL: another request, or healthy). */
static void set_health(gw_spool *s, int healthy, const char *why, srepo *by)
{
	gw_spool_event ev;
	gw_metrics_gauge_set(METRIC(s, store_healthy), healthy);
	if (s->healthy == healthy)
		return;
	s->healthy = healthy;
	if (!healthy)
		s->turned_unhealthy = by;
	if (healthy) {
		size_t i;
		/*
		 * Back: every repository waiting on its backoff goes now, except
		 * the one whose failure began the outage: its failure may be its
		 * own (a broken key or directory), and resetting it whenever
		 * another repository succeeds would retry it without backoff.
		 */
		for (i = 0; i < s->nrepos; i++)
			if (s->repos[i] != s->turned_unhealthy)
				s->repos[i]->retry_at_ms = s->repos[i]->backoff_ms = 0;
		s->turned_unhealthy = NULL;
		s->probe_at_ms = s->probe_backoff_ms = 0;
		pthread_cond_broadcast(&s->cond);
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = GW_SPOOL_HEALTH;
	ev.healthy = healthy;
	ev.message = why ? strdup(why) : NULL;
	post(s, &ev);
}

/* ---- opening: segments spooled before a restart ---- */

static int load_existing(gw_spool *s)
{
	gw_store_listing l;
	size_t i;
	int rc = gw_store_list_all(s->store, GW_LAYOUT_REPOS, &l);
	for (i = 0; rc == 0 && i < l.count; i++) {
		gw_segment_header h;
		unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
		gw_spool_item info;
		gw_key_kind kind;
		char *rel = NULL;
		memset(&info, 0, sizeof(info));
		if (gw_layout_parse_key(l.keys[i], &rel, &info.lsn, &kind) < 0 || !rel || kind != GW_KEY_SEGMENT) {
			free(rel);
			continue; /* not a segment key: nothing gitwal spooled */
		}
		info.bytes = l.sizes[i];
		if (gw_segment_read_meta(s->store, l.keys[i], l.sizes[i], &h, trailer) == 0) {
			info.updates = h.nupdates;
			info.objects = h.objects;
			info.time_us = info.spooled_us = h.time_last_us;
			info.gap = h.gap;
			info.pool = h.pool.repository;
			info.pool_lsn = h.pool.lsn;
			rc = enqueue(s, rel, l.keys[i], &info);
			gw_segment_header_dispose(&h);
			free(rel);
			continue;
		}
		gw_error_clear(); /* a damaged one fails its upload, named */
		rc = enqueue(s, rel, l.keys[i], &info);
		free(rel);
	}
	gw_store_listing_dispose(&l);
	return rc;
}

int gw_spool_open(gw_spool **out, const char *dir, uint64_t max_bytes)
{
	gw_spool *s = calloc(1, sizeof(*s));
	char *url;
	int rc;
	*out = NULL;
	if (!s || asprintf(&url, "file://%s", dir) < 0) {
		free(s);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->healthy = 1;
	s->max_bytes = max_bytes;
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rc = s->evfd < 0 ? gw_error_set_errno(GW_EIO, "eventfd") : gw_store_open(&s->store, url);
	free(url);
	if (rc == 0 && !(s->dir = strdup(dir)))
		rc = gw_error_set(GW_ERROR, "out of memory");
	if (rc < 0 || (rc = load_existing(s)) < 0) {
		gw_spool_free(s);
		return gw_error_prefix("spool %s", dir);
	}
	*out = s;
	return 0;
}

/* ---- scrape-time gauges ---- */

static int gauge_segments(void *payload, double *v)
{
	*v = (double)gw_spool_count(payload);
	return 0;
}

static int gauge_bytes(void *payload, double *v)
{
	*v = (double)gw_spool_bytes(payload);
	return 0;
}

/* Seconds since the oldest segment still in the spool became durable there; 0 when none. */
static int gauge_oldest(void *payload, double *v)
{
	gw_spool *s = payload;
	int64_t oldest = 0, now = gw_time_now_us();
	size_t i;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nrepos; i++)
		if (s->repos[i]->head && s->repos[i]->head->info.spooled_us &&
		    (!oldest || s->repos[i]->head->info.spooled_us < oldest))
			oldest = s->repos[i]->head->info.spooled_us;
	pthread_mutex_unlock(&s->lock);
	*v = oldest && now > oldest ? (double)(now - oldest) / 1e6 : 0;
	return 0;
}

static int gauge_healthy(void *payload, double *v)
{
	*v = gw_spool_healthy(payload);
	return 0;
}

static void detach_gauges(gw_spool *s)
{
	gw_metrics_gauge_set_fn(METRIC(s, store_healthy), NULL, NULL);
	gw_metrics_gauge_set_fn(METRIC(s, spool_segments), NULL, NULL);
	gw_metrics_gauge_set_fn(METRIC(s, spool_bytes), NULL, NULL);
	gw_metrics_gauge_set_fn(METRIC(s, spool_oldest_age), NULL, NULL);
}

void gw_spool_free(gw_spool *s)
{
	size_t i;
	unsigned t;
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (t = 0; t < s->nthreads; t++)
		pthread_join(s->threads[t], NULL);
	free(s->threads);
	detach_gauges(s);
	for (i = 0; i < s->nrepos; i++) {
		while (s->repos[i]->head)
			dequeue(s, s->repos[i]);
		free(s->repos[i]->last_error);
		while (s->repos[i]->nkept)
			free(s->repos[i]->kept[--s->repos[i]->nkept]);
		free(s->repos[i]->kept);
		free(s->repos[i]->rel);
		free(s->repos[i]);
	}
	free(s->repos);
	for (i = 0; i < s->nevents; i++)
		gw_spool_event_dispose(&s->events[i]);
	free(s->events);
	if (s->evfd >= 0)
		close(s->evfd);
	gw_store_free(s->store);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

gw_store *gw_spool_store(gw_spool *s)
{
	return s->store;
}

/* One of the queue's totals (s->bytes, s->count): the upload threads change them, so read under the lock. */
static uint64_t total(gw_spool *s, const uint64_t *which)
{
	uint64_t v;
	pthread_mutex_lock(&s->lock);
	v = *which;
	pthread_mutex_unlock(&s->lock);
	return v;
}

uint64_t gw_spool_bytes(gw_spool *s)
{
	return total(s, &s->bytes);
}

size_t gw_spool_count(gw_spool *s)
{
	return (size_t)total(s, &s->count);
}

int gw_spool_full(gw_spool *s)
{
	return gw_spool_bytes(s) >= s->max_bytes;
}

int gw_spool_has_repo(gw_spool *s, const char *rel)
{
	srepo *r;
	int has;
	pthread_mutex_lock(&s->lock);
	r = srepo_find(s, rel);
	has = r && (r->n || r->stopped);
	pthread_mutex_unlock(&s->lock);
	return has;
}

int gw_spool_add(gw_spool *s, const char *rel, const gw_spool_item *info)
{
	char *key = gw_layout_key(rel, info->lsn, GW_KEY_SEGMENT);
	int rc;
	if (!key)
		return gw_error_set(GW_ERROR, "out of memory");
	pthread_mutex_lock(&s->lock);
	rc = enqueue(s, rel, key, info);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	free(key);
	return rc;
}

/* ---- uploading ---- */

/* Copy one spooled segment to the store, create-only: the spool's file pumped into the store's writer. */
static int upload(gw_spool *s, const char *key, uint64_t size)
{
	gw_store_writer *w = NULL;
	int rc;
	if ((rc = gw_store_write_open(&w, s->target, key, size)) == 0 &&
	    (rc = gw_store_pump(s->store, key, 0, GW_STORE_TO_END, gw_store_writer_sink(w))) == 0)
		rc = gw_store_writer_commit(w);
	gw_store_writer_free(w);
	return rc;
}

/* The digest in a stored segment's trailer: equal digests, equal records. */
static int trailer_digest(gw_store *store, const char *key, uint64_t size, unsigned char digest[32])
{
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	int rc;
	if (size < sizeof(trailer))
		return gw_error_set(GW_ECORRUPT, "segment %s is truncated", key);
	if ((rc = gw_store_read_range(store, key, size - sizeof(trailer), sizeof(trailer), trailer)) == 0)
		memcpy(digest, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
	return rc;
}

/* 1: the store holds this very segment (uploaded before a crash); 0: another record; <0: cannot tell. */
static int store_has_same(gw_spool *s, const char *key, uint64_t size, gw_segment_header *theirs_h, int *read_h)
{
	unsigned char mine[32], theirs[32], trailer[GW_SEGMENT_TRAILER_SIZE];
	gw_store_stat st;
	int rc;
	*read_h = 0;
	if ((rc = gw_store_stat_key(s->target, key, &st)) < 0 || (rc = trailer_digest(s->target, key, st.size, theirs)) < 0 ||
	    (rc = trailer_digest(s->store, key, size, mine)) < 0)
		return rc;
	if (st.size == size && memcmp(mine, theirs, 32) == 0)
		return 1;
	*read_h = gw_segment_read_meta(s->target, key, st.size, theirs_h, trailer) == 0;
	return 0;
}

/*
 * Upload r's head (r is busy; the lock is not held) and post what became of
 * it. Returns 1 when it is in the store.
 */
static int upload_head(gw_spool *s, srepo *r, sitem *it)
{
	gw_spool_event ev;
	gw_segment_header theirs;
	int64_t t0 = gw_time_now_us(), t1;
	int rc, same = 0, read_h = 0, ok;

	memset(&ev, 0, sizeof(ev));
	rc = upload(s, it->key, it->info.bytes);
	if (rc == GW_EEXISTS && (same = store_has_same(s, it->key, it->info.bytes, &theirs, &read_h)) == 1)
		rc = 0; /* uploaded before a crash, or by an upload whose answer was lost */
	t1 = gw_time_now_us();
	if (rc == 0) {
		/* The store has it: the index row is a cache (the next sync repairs a failure here). */
		gw_index_record_segment(s->index, s->store, it->key, it->info.bytes);
		gw_error_clear();
		gw_metrics_counter_inc(METRIC(s, segments_written));
		gw_metrics_counter_add(METRIC(s, segment_bytes), it->info.bytes);
		gw_metrics_gauge_set_double(METRIC(s, last_segment_timestamp), (double)t1 / 1e6);
		gw_metrics_histogram_observe(METRIC(s, upload_seconds), (double)(t1 - t0) / 1e6);
		if (it->info.changed_us)
			gw_metrics_histogram_observe(METRIC(s, archive_lag), (double)(t1 - it->info.changed_us) / 1e6);
	} else if (rc == GW_EEXISTS && same == 0) {
		ev.taken_by_full = read_h && theirs.full_backup;
		ev.taken_unreadable = !read_h;
		if (read_h)
			gw_segment_header_dispose(&theirs);
	} else {
		if (rc == GW_EEXISTS) /* could not tell whose it is: try again later */
			rc = same;
		gw_metrics_counter_inc(s->metrics ? s->metrics->errors[GW_METRICS_ERROR_STORE] : NULL);
	}
	ok = rc == 0;
	pthread_mutex_lock(&s->lock);
	ev.rel = strdup(r->rel);
	ev.item = it->info;
	if (ok) {
		ev.kind = GW_SPOOL_UPLOADED;
		ev.durable_us = t1;
		ev.upload_s = (double)(t1 - t0) / 1e6;
		r->backoff_ms = r->retry_at_ms = 0;
		free(r->last_error);
		r->last_error = NULL;
		/* The key goes with the event: its file is removed in the loop's thread. */
		ev.message = it->key;
		it->key = NULL;
		dequeue(s, r);
		set_health(s, 1, NULL, NULL);
	} else if (rc == GW_EEXISTS) {
		ev.kind = GW_SPOOL_CONFLICT;
		r->stopped = 1;
		set_health(s, 1, NULL, NULL); /* it answered, and took writes: someone else's */
	} else {
		ev.kind = GW_SPOOL_FAILED;
		ev.code = rc;
		ev.message = strdup(gw_error_message());
		free(r->last_error);
		r->last_error = strdup(gw_error_message());
		r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_FIRST_MS;
		if (r->backoff_ms > BACKOFF_MAX_MS)
			r->backoff_ms = BACKOFF_MAX_MS;
		r->retry_at_ms = mono_ms() + r->backoff_ms;
		ev.retry_ms = r->backoff_ms;
		if (rc == GW_EIO || rc == GW_EAUTH)
			set_health(s, 0, gw_error_message(), r);
	}
	r->busy = 0;
	post(s, &ev);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/*
 * Does r's head name a pool record still spooled (lock held)? The pool's
 * queue is in LSN order: its head is its lowest. The member's head goes
 * once the upload of that record reports (its thread then picks again).
 */
static int waits_for_pool(gw_spool *s, const srepo *r)
{
	const srepo *pool = r->head->pool ? srepo_find(s, r->head->pool) : NULL;
	return pool && pool != r && pool->head && pool->head->info.lsn <= r->head->info.pool_lsn;
}

/* The next repository whose head may go up now (lock held); *wait_ms: until the earliest retry. */
static srepo *pick(gw_spool *s, int64_t now, int64_t *wait_ms)
{
	size_t k;
	*wait_ms = -1;
	for (k = 0; k < s->nrepos; k++) {
		size_t i = (s->cursor + k) % s->nrepos;
		srepo *r = s->repos[i];
		if (!r->head || r->busy || r->stopped || waits_for_pool(s, r))
			continue;
		if (r->retry_at_ms > now) {
			if (*wait_ms < 0 || r->retry_at_ms - now < *wait_ms)
				*wait_ms = r->retry_at_ms - now;
			continue;
		}
		s->cursor = i + 1;
		return r;
	}
	return NULL;
}

static void *worker(void *arg)
{
	gw_spool *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		int64_t wait_ms;
		srepo *r = pick(s, mono_ms(), &wait_ms);
		if (!r) {
			if (wait_ms < 0) {
				pthread_cond_wait(&s->cond, &s->lock);
			} else {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += wait_ms / 1000;
				ts.tv_nsec += (wait_ms % 1000) * 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&s->cond, &s->lock, &ts);
			}
			continue;
		}
		sitem *it = r->head; /* only this thread takes r's head while it is busy */
		r->busy = 1;
		pthread_mutex_unlock(&s->lock);
		upload_head(s, r, it);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int gw_spool_start(gw_spool *s, gw_store *store, gw_index *index, unsigned nthreads, gw_metrics_archiver *metrics)
{
	unsigned t;
	s->target = store;
	s->index = index;
	s->metrics = metrics;
	gw_metrics_gauge_set_fn(METRIC(s, store_healthy), gauge_healthy, s);
	gw_metrics_gauge_set_fn(METRIC(s, spool_segments), gauge_segments, s);
	gw_metrics_gauge_set_fn(METRIC(s, spool_bytes), gauge_bytes, s);
	gw_metrics_gauge_set_fn(METRIC(s, spool_oldest_age), gauge_oldest, s);
	if (!nthreads)
		return 0;
	if (!(s->threads = calloc(nthreads, sizeof(pthread_t))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (t = 0; t < nthreads; t++) {
		if (gw_thread_create(&s->threads[t], worker, s) != 0)
			return gw_error_set(GW_ERROR, "cannot start upload thread %u", t + 1);
		s->nthreads++;
	}
	return 0;
}

int gw_spool_flush(gw_spool *s)
{
	int64_t wait_ms;
	srepo *r;
	size_t i;
	int done = 0;
	pthread_mutex_lock(&s->lock);
	/* Every repository gets one turn, until its first failure (no backoff: the run ends). */
	for (i = 0; i < s->nrepos; i++)
		s->repos[i]->retry_at_ms = 0;
	while ((r = pick(s, mono_ms(), &wait_ms))) {
		sitem *it = r->head;
		r->busy = 1;
		pthread_mutex_unlock(&s->lock);
		done += upload_head(s, r, it);
		pthread_mutex_lock(&s->lock);
		if (r->retry_at_ms)
			r->retry_at_ms = INT64_MAX;
	}
	for (i = 0; i < s->nrepos; i++)
		if (s->repos[i]->retry_at_ms == INT64_MAX)
			s->repos[i]->retry_at_ms = 0;
	pthread_mutex_unlock(&s->lock);
	return done;
}

/* ---- events ---- */

int gw_spool_fd(gw_spool *s)
{
	return s->evfd;
}

int gw_spool_next_event(gw_spool *s, gw_spool_event *ev)
{
	uint64_t n;
	int got = 0, keep = 0;
	pthread_mutex_lock(&s->lock);
	if (s->nevents) {
		*ev = s->events[0];
		memmove(s->events, s->events + 1, (s->nevents - 1) * sizeof(*ev));
		s->nevents--;
		got = 1;
	} else if (s->evfd >= 0 && read(s->evfd, &n, sizeof(n)) < 0) {
		/* Nothing to read: fine (non-blocking). */
	}
	if (got && ev->kind == GW_SPOOL_UPLOADED) {
		/* Its state is being loaded (gw_spool_pin): the file stays until the load is done. */
		srepo *r = srepo_find(s, ev->rel);
		if (r && r->pinned && GW_ARRAY_RESERVE(r->kept, r->keptcap, r->nkept + 1) == 0) {
			r->kept[r->nkept++] = ev->message;
			ev->message = NULL;
			keep = 1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (got && ev->kind == GW_SPOOL_UPLOADED && !keep) {
		/* The store has it; a file left by a failure here is uploaded again (same digest: done). */
		gw_store_remove(s->store, ev->message);
		gw_error_clear();
		free(ev->message);
		ev->message = NULL;
	}
	return got;
}

void gw_spool_pin(gw_spool *s, const char *rel, int pin)
{
	srepo *r;
	char **kept = NULL;
	size_t n = 0, i;
	pthread_mutex_lock(&s->lock);
	if ((r = pin ? srepo_get(s, rel) : srepo_find(s, rel))) {
		r->pinned = pin;
		if (!pin) {
			kept = r->kept;
			n = r->nkept;
			r->kept = NULL;
			r->nkept = r->keptcap = 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i++) {
		gw_store_remove(s->store, kept[i]);
		free(kept[i]);
	}
	free(kept);
	gw_error_clear();
}

void gw_spool_wake(gw_spool *s)
{
	uint64_t one = 1;
	if (s->evfd >= 0 && write(s->evfd, &one, sizeof(one)) < 0) {
		/* The counter is at its maximum: the loop is awake anyway. */
	}
}

void gw_spool_event_dispose(gw_spool_event *ev)
{
	free(ev->rel);
	free(ev->message);
	memset(ev, 0, sizeof(*ev));
}

/* ---- conflicts ---- */

int gw_spool_set_aside(gw_spool *s, const char *rel, uint64_t *bytes, size_t *count, int64_t *last_us)
{
	gw_store_listing l;
	char *prefix = gw_layout_repo_prefix(rel), *enc = gw_repo_path_encode(rel), *from = NULL, *dir = NULL;
	char name[4200];
	srepo *r;
	size_t i;
	int rc;
	*bytes = 0;
	*count = 0;
	*last_us = 0;
	memset(&l, 0, sizeof(l));
	if (!prefix || !enc || asprintf(&from, "%s/%s%s", s->dir, GW_LAYOUT_REPOS, enc) < 0 ||
	    asprintf(&dir, "%s-conflicts", s->dir) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_store_list_all(s->store, prefix, &l)) < 0 || (rc = gw_fs_mkdir_p(dir, 0700)) < 0)
		goto out;
	snprintf(name, sizeof(name), "%s/%s.%lld", dir, enc, (long long)time(NULL));
	if (l.count && rename(from, name) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot move %s to %s", from, name);
		goto out;
	}
	for (i = 0; i < l.count; i++)
		*bytes += l.sizes[i];
	*count = l.count;
	pthread_mutex_lock(&s->lock);
	if ((r = srepo_find(s, rel))) {
		while (r->busy) /* not after a conflict (it stops the queue), but never under a thread's feet */
			pthread_cond_wait(&s->cond, &s->lock);
		while (r->head) {
			if (r->head->info.time_us > *last_us)
				*last_us = r->head->info.time_us;
			dequeue(s, r);
		}
		r->stopped = 0;
		r->backoff_ms = r->retry_at_ms = 0;
	}
	pthread_mutex_unlock(&s->lock);
out:
	gw_store_listing_dispose(&l);
	free(prefix);
	free(enc);
	free(from);
	free(dir);
	return rc;
}

size_t gw_spool_pending(gw_spool *s, gw_spool_pending_fn fn, void *payload)
{
	size_t i, n = 0;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nrepos; i++) {
		srepo *r = s->repos[i];
		if (!r->head)
			continue;
		n++;
		fn(r->rel, r->n, r->head->info.lsn, r->tail->info.lsn,
		   r->stopped ? "its first LSN holds another record in the store" : r->last_error, payload);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- health ---- */

/* The driver's own view counts too: it sees a request stall while it is still in flight. */
static int driver_healthy(gw_spool *s)
{
	gw_store_health h;
	if (!s->target)
		return 1;
	gw_store_health_get(s->target, &h);
	return h.healthy;
}

int gw_spool_healthy(gw_spool *s)
{
	int h;
	pthread_mutex_lock(&s->lock);
	h = s->healthy;
	pthread_mutex_unlock(&s->lock);
	return h && driver_healthy(s);
}

void gw_spool_note_store(gw_spool *s, int rc)
{
	if (rc != 0 && rc != GW_EIO && rc != GW_EAUTH)
		return; /* not the store's health: the data, the repository, a conflict */
	pthread_mutex_lock(&s->lock);
	set_health(s, rc == 0, rc < 0 ? gw_error_message() : NULL, NULL);
	if (rc < 0) {
		s->probe_backoff_ms = s->probe_backoff_ms ? s->probe_backoff_ms * 2 : BACKOFF_FIRST_MS;
		if (s->probe_backoff_ms > BACKOFF_MAX_MS)
			s->probe_backoff_ms = BACKOFF_MAX_MS;
		s->probe_at_ms = mono_ms() + s->probe_backoff_ms;
	}
	pthread_mutex_unlock(&s->lock);
}

int gw_spool_store_may_try(gw_spool *s)
{
	int may, healthy = driver_healthy(s);
	pthread_mutex_lock(&s->lock);
	healthy = healthy && s->healthy;
	may = healthy || mono_ms() >= s->probe_at_ms;
	if (!healthy && may) /* this is the probe: the next one waits for its outcome's backoff */
		s->probe_at_ms = mono_ms() + (s->probe_backoff_ms ? s->probe_backoff_ms : BACKOFF_FIRST_MS);
	pthread_mutex_unlock(&s->lock);
	return may;
}
