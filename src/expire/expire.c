/*
 * gw_expire_run: retention applied to an archive (DESIGN.md 18.5).
 *
 * Order, and why a kill -9 anywhere is safe:
 *  1. Records an earlier run wrote but did not finish are finished first.
 *  2. Every repository is planned from the index alone (its full backups
 *     and three indexed lookups): the cost follows the repositories and
 *     their full backups, never their segments.
 *  3. For a repository with something to remove: what the store gained
 *     since the index last looked is synced (one listing past its last
 *     LSN), the plan is made again, and the oldest full backup kept is
 *     checked whole in the store (its manifest against the index's digest,
 *     its bundle and index present), so nothing is removed in favour of a
 *     backup that is not there.
 *  4. The expire record is written, create-only, before any key goes. From
 *     then on the removed range is expired by policy for every reader (the
 *     audit, index syncs, restore), whether its keys are gone or not.
 *  5. The index records it and forgets what it covers (one transaction).
 *  6. The keys are removed in LSN order, each full backup's manifest first,
 *     at most GW_STORE_REMOVE_BATCH at a time, found by listing the
 *     repository's prefix from its start up to the record's LSN (so the
 *     requests follow what is removed); keys under Object Lock retention
 *     are left and reported; the record is marked done once none is left.
 * Nothing at or above the oldest full backup kept is ever touched, so
 * every moment of the window restores after a stop at any point; the next
 * run finds the record not done (step 1, or the record's key taken in
 * step 4) and finishes it.
 */
#include "gitwal/expire.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/time.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Plans are made for every repository first (timed), then carried out. */
typedef struct {
	char *rel;
	gw_expire_full *fulls;
	size_t n;
} planned;

typedef struct {
	planned *items;
	size_t n, cap;
} plan_list;

typedef struct {
	gw_store *store;
	gw_index *index;
	const gw_expire_opts *opts;
	gw_expire_result *res;
	int64_t now_us;
	uint64_t removed_total; /* for the tests' kill point */
	int warned_lock;
	plan_list *pl; /* while planning */
} run;

static double since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int oom(void)
{
	return gw_error_set(GW_ERROR, "out of memory");
}

static void log_line(run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(run *x, const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	if (!x->opts->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(x->opts->log, "ts=now event=%s\n", line);
	fflush(x->opts->log);
}

static gw_expire_repo_result *add_result(run *x, const char *rel)
{
	gw_expire_result *r = x->res;
	gw_expire_repo_result *n;
	if (GW_ARRAY_RESERVE(r->repos, r->repos_cap, r->nrepos + 1) < 0)
		return NULL;
	n = &r->repos[r->nrepos];
	memset(n, 0, sizeof(*n));
	if (!(n->repository = strdup(rel)))
		return NULL;
	r->nrepos++;
	return n;
}

static void fail_repo(run *x, gw_expire_repo_result *rr)
{
	free(rr->error);
	rr->error = strdup(gw_error_message());
	x->res->failed++;
	log_line(x, "expire_error repo=%s error=\"%s\"", rr->repository, gw_error_message());
}

/* Test hook: stop dead, as kill -9 would, at a chosen point. */
static void kill_point(run *x, const char *point)
{
	if (x->opts->kill_after == -2 && !strcmp(point, "record"))
		raise(SIGKILL);
	if (x->opts->kill_after >= 0 && !strcmp(point, "removed") && x->removed_total >= (uint64_t)x->opts->kill_after)
		raise(SIGKILL);
}

/* A lock longer than the window keeps what the policy expires: say so once a run. */
static void warn_lock(run *x, int64_t period_s)
{
	char within[32], lock[32];
	if (x->warned_lock || period_s <= x->opts->keep_within_us / 1000000)
		return;
	x->warned_lock = 1;
	x->res->lock_period_s = period_s;
	gw_duration_format(x->opts->keep_within_us, within, sizeof(within));
	gw_duration_format(period_s * 1000000, lock, sizeof(lock));
	log_line(x, "expire_warning kind=lock_longer_than_window lock=%s window=%s", lock, within);
}

/* ---- removing what a record covers ---- */

typedef struct {
	char **keys;
	uint64_t *sizes;
	size_t n;
	uint64_t last_lsn;
	int more; /* the listing stopped at the batch's size: there may be more */
} batch;

static int kind_rank(gw_key_kind k)
{
	/* The commit point first: what remains of a full backup is then no backup to any reader. */
	return k == GW_KEY_FULL_MANIFEST ? 0 : k == GW_KEY_FULL_BUNDLE ? 1 : k == GW_KEY_FULL_IDX ? 2 : 3;
}

static int collect_cb(const gw_store_entry *e, void *payload)
{
	batch *b = payload;
	char *rel = NULL;
	uint64_t lsn;
	gw_key_kind kind;
	gw_layout_parse_key(e->key, &rel, &lsn, &kind);
	free(rel);
	gw_error_clear();
	if (kind == GW_KEY_UNKNOWN || kind == GW_KEY_EXPIRE)
		return lsn > b->last_lsn && kind != GW_KEY_UNKNOWN; /* not ours to remove; past the range: stop */
	if (lsn > b->last_lsn)
		return 1;
	if (b->n == GW_STORE_REMOVE_BATCH) {
		b->more = 1;
		return 1;
	}
	if (!(b->keys[b->n] = strdup(e->key)))
		return oom();
	b->sizes[b->n++] = e->size;
	return 0;
}

static int batch_cmp(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	char *ra = NULL, *rb = NULL;
	uint64_t la = 0, lb = 0;
	gw_key_kind ka = GW_KEY_UNKNOWN, kb = GW_KEY_UNKNOWN;
	gw_layout_parse_key(a, &ra, &la, &ka);
	gw_layout_parse_key(b, &rb, &lb, &kb);
	free(ra);
	free(rb);
	if (la != lb)
		return la < lb ? -1 : 1;
	return kind_rank(ka) - kind_rank(kb);
}

typedef struct {
	run *x;
	gw_expire_repo_result *rr;
	batch *b;
} removal_state;

static int removal_cb(const gw_store_removal *r, void *payload)
{
	removal_state *s = payload;
	run *x = s->x;
	gw_expire_repo_result *rr = s->rr;
	size_t i;
	char until[GW_TIME_TEXT_MAX];
	if (r->rc == 0) {
		for (i = 0; i < s->b->n; i++)
			if (!strcmp(s->b->keys[i], r->key))
				rr->bytes_removed += s->b->sizes[i];
		rr->keys_removed++;
		x->removed_total++;
		kill_point(x, "removed");
		return 0;
	}
	if (r->rc == GW_ELOCKED) {
		rr->keys_locked++;
		if (r->retain_until > rr->locked_until)
			rr->locked_until = r->retain_until;
		gw_time_format(r->retain_until * 1000000, until, sizeof(until));
		log_line(x, "expire_locked repo=%s key=%s until=%s", rr->repository, r->key, until);
		if (r->created)
			warn_lock(x, r->retain_until - r->created);
		return 0;
	}
	rr->keys_failed++;
	if (!rr->refused && asprintf(&rr->refused, "%s: %s", r->key, r->message ? r->message : "refused") < 0)
		rr->refused = NULL;
	log_line(x, "expire_refused repo=%s key=%s error=\"%s\"", rr->repository, r->key,
		 r->message ? r->message : "refused");
	return 0;
}

/* Remove every key of rel at or below last_lsn (expire records aside); *left: keys that stay (locked or refused). */
static int remove_range(run *x, gw_expire_repo_result *rr, uint64_t last_lsn, uint64_t *left)
{
	char *prefix = gw_layout_repo_prefix(rr->repository), *after = NULL;
	batch b;
	int rc = 0;
	uint64_t locked0 = rr->keys_locked, failed0 = rr->keys_failed;
	size_t i;

	*left = 0;
	memset(&b, 0, sizeof(b));
	b.last_lsn = last_lsn;
	if (!prefix || !(b.keys = calloc(GW_STORE_REMOVE_BATCH, sizeof(char *))) ||
	    !(b.sizes = calloc(GW_STORE_REMOVE_BATCH, sizeof(uint64_t)))) {
		rc = oom();
		goto out;
	}
	do {
		removal_state s = {x, rr, &b};
		b.n = 0;
		b.more = 0;
		rc = gw_store_list_after(x->store, prefix, after, collect_cb, &b);
		x->res->requests += 1 + b.n / 1000;
		if (rc < 0)
			break;
		rc = 0;
		if (!b.n)
			break;
		free(after);
		if (!(after = strdup(b.keys[b.n - 1]))) {
			rc = oom();
			break;
		}
		qsort(b.keys, b.n, sizeof(char *), batch_cmp);
		rc = gw_store_remove_batch(x->store, (const char *const *)b.keys, b.n, x->now_us / 1000000, removal_cb, &s);
		x->res->requests += (b.n + GW_STORE_REMOVE_BATCH - 1) / GW_STORE_REMOVE_BATCH;
		for (i = 0; i < b.n; i++) {
			free(b.keys[i]);
			b.keys[i] = NULL;
		}
	} while (rc == 0 && b.more && !(x->opts->stop && *x->opts->stop));
	*left = (rr->keys_locked - locked0) + (rr->keys_failed - failed0);
	if (b.more)
		(*left)++; /* stopped before the range's end: not done */
out:
	for (i = 0; b.keys && i < b.n; i++)
		free(b.keys[i]);
	free(b.keys);
	free(b.sizes);
	free(after);
	free(prefix);
	return rc;
}

/* Remove what the record covers, then mark it done unless something stays. */
static int finish_record(run *x, gw_expire_repo_result *rr, const char *key, uint64_t last_lsn)
{
	uint64_t left = 0;
	int rc;
	if ((rc = remove_range(x, rr, last_lsn, &left)) < 0)
		return rc;
	if (!left)
		return gw_index_expire_set_done(x->index, key);
	return 0;
}

static int pending_cb(const char *key, const gw_expire_record *r, int done, void *payload)
{
	run *x = payload;
	gw_expire_repo_result *rr;
	size_t i;
	int selected = !x->opts->nrepos;
	(void)done;
	for (i = 0; i < x->opts->nrepos && !selected; i++)
		selected = !strcmp(x->opts->repos[i], r->repository);
	if (!selected || x->opts->dry_run)
		return 0;
	if (!(rr = add_result(x, r->repository)) || !(rr->record_key = strdup(key)))
		return oom();
	rr->resumed = 1;
	rr->plan.action = r->whole ? GW_EXPIRE_WHOLE : GW_EXPIRE_PREFIX;
	rr->plan.first_lsn = r->first_lsn;
	rr->plan.last_lsn = r->last_lsn;
	rr->plan.kept_lsn = r->kept_lsn;
	rr->plan.kept_us = r->kept_us;
	rr->plan.deleted_us = r->deleted_us;
	if (finish_record(x, rr, key, r->last_lsn) < 0) {
		if (gw_error_code() == GW_EIO)
			return GW_EIO;
		fail_repo(x, rr);
		return 0;
	}
	log_line(x, "expire repo=%s resumed=1 record=%s keys_removed=%llu bytes=%llu locked=%llu", r->repository, key,
		 (unsigned long long)rr->keys_removed, (unsigned long long)rr->bytes_removed,
		 (unsigned long long)rr->keys_locked);
	return 0;
}

/* ---- planning ---- */

/*
 * Full backups from the index, grouped by repository. Collected whole before
 * any planning: the index holds its lock while it calls back, and planning
 * asks it more.
 */
typedef struct {
	gw_expire_full *fulls;
	size_t n, cap;
	char **repos;
	size_t *start; /* repos[i]'s full backups begin at fulls[start[i]] */
	size_t nrepos, rcap, scap;
} full_walk;

static int full_cb(const gw_full_record *rec, void *payload)
{
	full_walk *w = payload;
	if (!w->nrepos || strcmp(w->repos[w->nrepos - 1], rec->repository) != 0) {
		if (GW_ARRAY_RESERVE(w->repos, w->rcap, w->nrepos + 1) < 0 ||
		    GW_ARRAY_RESERVE(w->start, w->scap, w->nrepos + 1) < 0)
			return GW_ERROR;
		if (!(w->repos[w->nrepos] = strdup(rec->repository)))
			return oom();
		w->start[w->nrepos++] = w->n;
	}
	if (GW_ARRAY_RESERVE(w->fulls, w->cap, w->n + 1) < 0)
		return GW_ERROR;
	w->fulls[w->n].lsn = rec->lsn;
	w->fulls[w->n++].time_us = rec->time_us;
	return 0;
}

/* Repository i's full backups: how many, from where. */
static size_t walk_group(const full_walk *w, size_t i, const gw_expire_full **first)
{
	size_t end = i + 1 < w->nrepos ? w->start[i + 1] : w->n;
	*first = w->fulls + w->start[i];
	return end - w->start[i];
}

static void walk_dispose(full_walk *w)
{
	size_t i;
	for (i = 0; i < w->nrepos; i++)
		free(w->repos[i]);
	free(w->repos);
	free(w->start);
	free(w->fulls);
	memset(w, 0, sizeof(*w));
}

static int plan_repo(run *x, const char *rel, const gw_expire_full *fulls, size_t n, gw_expire_plan *plan)
{
	gw_expire_input in;
	gw_expire_policy_opts po = {x->now_us, x->opts->keep_within_us, x->opts->keep_full};
	int rc;
	memset(&in, 0, sizeof(in));
	/* A pool keeps the generations its members' full backups name (DESIGN.md 19). */
	if ((rc = gw_index_expire_facts(x->index, rel, &in)) < 0 ||
	    (rc = gw_index_pool_floor(x->index, rel, &in.pinned_lsn)) < 0)
		return rc;
	in.fulls = fulls;
	in.nfulls = n;
	return gw_expire_policy(&in, &po, plan);
}

/* The repository's full backups from the index, then its plan. */
static int replan(run *x, const char *rel, gw_expire_plan *plan)
{
	full_walk w;
	const gw_expire_full *fulls = NULL;
	size_t n = 0;
	int rc;
	memset(&w, 0, sizeof(w));
	rc = gw_index_full_foreach(x->index, rel, full_cb, &w);
	if (rc == 0 && w.nrepos)
		n = walk_group(&w, 0, &fulls);
	if (rc == 0)
		rc = plan_repo(x, rel, fulls, n, plan);
	walk_dispose(&w);
	return rc;
}

/* The oldest full backup kept must be whole in the store: its manifest (the index's digest), bundle and index. */
static int check_kept(run *x, const char *rel, uint64_t lsn)
{
	gw_full_record f;
	gw_manifest m;
	gw_store_stat st;
	char *text = NULL, hex[65];
	unsigned char d[32];
	size_t len;
	int rc;
	if ((rc = gw_index_full_find(x->index, rel, lsn, &f)) < 0)
		return rc;
	memset(&m, 0, sizeof(m));
	rc = gw_store_get(x->store, f.manifest_key, GW_MANIFEST_MAX_SIZE, &text, &len);
	x->res->requests++;
	if (rc == 0) {
		gw_hash_buffer(GW_HASH_SHA256, text, len, d);
		gw_hex_encode(hex, d, 32);
		if (strcmp(hex, f.manifest_sha256) != 0)
			rc = gw_error_set(GW_ECORRUPT, "manifest %s has SHA-256 %s, the index records %s", f.manifest_key,
					  hex, f.manifest_sha256);
	}
	if (rc == 0)
		rc = gw_manifest_parse(&m, text, len, f.manifest_key);
	if (rc == 0 && (rc = gw_store_stat_key(x->store, m.bundle.key, &st)) == 0 && st.size != m.bundle.size)
		rc = gw_error_set(GW_ECORRUPT, "bundle %s is %llu bytes, its manifest says %llu", m.bundle.key,
				  (unsigned long long)st.size, (unsigned long long)m.bundle.size);
	if (rc == 0 && (rc = gw_store_stat_key(x->store, m.idx.key, &st)) == 0 && st.size != m.idx.size)
		rc = gw_error_set(GW_ECORRUPT, "index %s is %llu bytes, its manifest says %llu", m.idx.key,
				  (unsigned long long)st.size, (unsigned long long)m.idx.size);
	x->res->requests += 2;
	if (rc < 0)
		gw_error_prefix("the full backup kept at LSN %llu is not whole, nothing of %s was removed",
				(unsigned long long)lsn, rel);
	if (m.repository)
		gw_manifest_dispose(&m);
	free(text);
	gw_full_record_dispose(&f);
	return rc;
}

/* Write the record (or take the one an interrupted run wrote under the same key). */
static int write_record(run *x, gw_expire_repo_result *rr, gw_expire_record *rec)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *key = gw_layout_key(rr->repository, rec->last_lsn, GW_KEY_EXPIRE);
	int rc;
	if (!key)
		return oom();
	if ((rc = gw_expire_record_encode(rec, &buf, &len)) == 0)
		rc = gw_store_put(x->store, key, buf, len);
	x->res->requests++;
	free(buf);
	if (rc == GW_EEXISTS) {
		/* An earlier run's record, not yet in this index: it covers the same keys; finish it. */
		gw_expire_record old;
		if ((rc = gw_expire_record_read(x->store, key, &old)) == 0) {
			*rec = (gw_expire_record){old.repository, old.whole, old.time_us, old.keep_within_us, old.keep_full,
						  old.first_lsn, old.last_lsn, old.kept_lsn, old.kept_us, old.deleted_us};
			rr->resumed = 1;
		}
		x->res->requests++;
	}
	if (rc < 0) {
		free(key);
		return rc;
	}
	rr->record_key = key;
	x->res->records++;
	kill_point(x, "record");
	return gw_index_expire_add(x->index, key, rec, 0);
}

static int expire_repo(run *x, const char *rel, const gw_expire_full *fulls, size_t n)
{
	gw_expire_repo_result *rr;
	gw_expire_plan plan;
	gw_expire_record rec;
	char *owned = NULL;
	int rc;
	if ((rc = plan_repo(x, rel, fulls, n, &plan)) < 0)
		return rc;
	if (plan.action == GW_EXPIRE_KEEP)
		return 0;
	if (!(rr = add_result(x, rel)))
		return oom();
	rr->plan = plan;
	if (x->opts->dry_run)
		return 0;
	/* What the store gained since the index looked (a newer full backup moves the cut), then plan again. */
	if ((rc = gw_index_sync_newer(x->index, x->store, rel)) < 0 || (rc = replan(x, rel, &rr->plan)) < 0) {
		x->res->requests++;
		if (rc == GW_EIO)
			return rc;
		fail_repo(x, rr);
		return 0;
	}
	x->res->requests++;
	if (rr->plan.action == GW_EXPIRE_KEEP)
		return 0;
	if (rr->plan.action == GW_EXPIRE_PREFIX && (rc = check_kept(x, rel, rr->plan.kept_lsn)) < 0) {
		if (rc == GW_EIO)
			return rc;
		fail_repo(x, rr);
		return 0;
	}
	memset(&rec, 0, sizeof(rec));
	rec.repository = (char *)rel;
	rec.whole = rr->plan.action == GW_EXPIRE_WHOLE;
	rec.time_us = x->now_us;
	rec.keep_within_us = x->opts->keep_within_us;
	rec.keep_full = x->opts->keep_full;
	rec.first_lsn = rr->plan.first_lsn;
	rec.last_lsn = rr->plan.last_lsn;
	rec.kept_lsn = rr->plan.kept_lsn;
	rec.kept_us = rr->plan.kept_us;
	rec.deleted_us = rr->plan.deleted_us;
	rc = write_record(x, rr, &rec);
	if (rec.repository != rel)
		owned = rec.repository;
	if (rc == 0)
		rc = finish_record(x, rr, rr->record_key, rec.last_lsn);
	free(owned);
	if (rc < 0) {
		if (rc == GW_EIO)
			return rc;
		fail_repo(x, rr);
		return 0;
	}
	log_line(x, "expire repo=%s action=%s lsn_from=%llu lsn_to=%llu kept_lsn=%llu keys_removed=%llu bytes=%llu "
		    "locked=%llu refused=%llu record=%s",
		 rel, rr->plan.action == GW_EXPIRE_WHOLE ? "whole" : "prefix", (unsigned long long)rr->plan.first_lsn,
		 (unsigned long long)rr->plan.last_lsn, (unsigned long long)rr->plan.kept_lsn,
		 (unsigned long long)rr->keys_removed, (unsigned long long)rr->bytes_removed,
		 (unsigned long long)rr->keys_locked, (unsigned long long)rr->keys_failed, rr->record_key);
	return 0;
}

static int keep_planned(run *x, const char *rel, const gw_expire_full *fulls, size_t n)
{
	plan_list *pl = x->pl;
	gw_expire_plan plan;
	planned *p;
	size_t i;
	int rc, selected = !x->opts->nrepos;
	for (i = 0; i < x->opts->nrepos && !selected; i++)
		selected = !strcmp(x->opts->repos[i], rel);
	if (!selected)
		return 0;
	if ((rc = plan_repo(x, rel, fulls, n, &plan)) < 0)
		return rc;
	if (plan.action == GW_EXPIRE_KEEP)
		return 0;
	if (GW_ARRAY_RESERVE(pl->items, pl->cap, pl->n + 1) < 0)
		return GW_ERROR;
	p = &pl->items[pl->n];
	memset(p, 0, sizeof(*p));
	if (!(p->rel = strdup(rel)) || (n && !(p->fulls = malloc(n * sizeof(*fulls))))) {
		free(p->rel);
		return oom();
	}
	if (n)
		memcpy(p->fulls, fulls, n * sizeof(*fulls));
	p->n = n;
	pl->n++;
	return 0;
}

int gw_expire_run(gw_store *store, gw_index *index, const gw_expire_opts *opts, gw_expire_result *result)
{
	run x;
	full_walk w;
	plan_list pl = {0};
	struct timespec t0;
	size_t i;
	int rc = 0;

	memset(result, 0, sizeof(*result));
	memset(&x, 0, sizeof(x));
	memset(&w, 0, sizeof(w));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	x.store = store;
	x.index = index;
	x.opts = opts;
	x.res = result;
	x.pl = &pl;
	x.now_us = opts->now_us ? opts->now_us : gw_time_now_us();
	if (opts->keep_within_us <= 0)
		return gw_error_set(GW_EINVALID, "expire needs a window: --keep-within DURATION (or gitwal.keepWithin)");

	/* 1. What an interrupted run left. */
	if ((rc = gw_index_expire_foreach(index, NULL, 1, pending_cb, &x)) < 0)
		goto out;

	/* 2. Plans from the index alone: the full backups in one pass, by repository. */
	if (!opts->nrepos) {
		rc = gw_index_full_foreach(index, NULL, full_cb, &w);
	} else {
		for (i = 0; i < opts->nrepos && rc == 0; i++)
			rc = gw_index_full_foreach(index, opts->repos[i], full_cb, &w);
	}
	for (i = 0; i < w.nrepos && rc == 0; i++) {
		const gw_expire_full *fulls;
		size_t n = walk_group(&w, i, &fulls);
		rc = keep_planned(&x, w.repos[i], fulls, n);
	}
	result->plan_seconds = since(&t0);

	/*
	 * The store's lock period (the URL's or the bucket's default retention),
	 * once, when something is to go: a lock longer than the window is
	 * warned of before any object refuses. A store that cannot say is no
	 * reason not to expire: the locked objects then tell (removal_cb).
	 */
	if (rc == 0 && pl.n) {
		int64_t period = 0;
		if (gw_store_lock_period(store, &period) == 0)
			warn_lock(&x, period);
		else
			gw_error_clear();
		result->requests++;
	}

	/* 3-6. Each repository with something to remove. */
	for (i = 0; i < pl.n && rc == 0 && !(opts->stop && *opts->stop); i++)
		rc = expire_repo(&x, pl.items[i].rel, pl.items[i].fulls, pl.items[i].n);
	for (i = 0; i < result->nrepos; i++) {
		result->keys_removed += result->repos[i].keys_removed;
		result->bytes_removed += result->repos[i].bytes_removed;
		result->keys_locked += result->repos[i].keys_locked;
		result->keys_failed += result->repos[i].keys_failed;
	}
	if (rc == 0)
		log_line(&x, "expire_done repositories=%zu records=%llu keys_removed=%llu bytes=%llu locked=%llu failed=%d "
			     "requests=%llu plan_ms=%.0f",
			 result->nrepos, (unsigned long long)result->records, (unsigned long long)result->keys_removed,
			 (unsigned long long)result->bytes_removed, (unsigned long long)result->keys_locked, result->failed,
			 (unsigned long long)result->requests, result->plan_seconds * 1000);
out:
	for (i = 0; i < pl.n; i++) {
		free(pl.items[i].rel);
		free(pl.items[i].fulls);
	}
	free(pl.items);
	walk_dispose(&w);
	result->seconds = since(&t0);
	return rc;
}

void gw_expire_result_dispose(gw_expire_result *result)
{
	size_t i;
	for (i = 0; i < result->nrepos; i++) {
		free(result->repos[i].repository);
		free(result->repos[i].record_key);
		free(result->repos[i].error);
		free(result->repos[i].refused);
	}
	free(result->repos);
	memset(result, 0, sizeof(*result));
}
