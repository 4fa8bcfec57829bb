/*
 * The audit's problem list: filled from worker threads (hence the lock),
 * sorted before output so that two audits of the same archive print the
 * same lines in the same order.
 */
#include "gitwal/array.h"
#include "gitwal/audit.h"
#include "gitwal/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[GW_AUDIT_KIND_COUNT] = {
	[GW_AUDIT_INDEX] = "index",
	[GW_AUDIT_MISSING] = "missing",
	[GW_AUDIT_UNINDEXED] = "unindexed",
	[GW_AUDIT_UNEXPECTED] = "unexpected",
	[GW_AUDIT_NO_MANIFEST] = "no-manifest",
	[GW_AUDIT_INCOMPLETE] = "incomplete",
	[GW_AUDIT_SIZE] = "size",
	[GW_AUDIT_CORRUPT] = "corrupt",
	[GW_AUDIT_CHECKSUM] = "checksum",
	[GW_AUDIT_PACK] = "pack",
	[GW_AUDIT_GAP] = "gap",
	[GW_AUDIT_LINK] = "link",
	[GW_AUDIT_BASE] = "base",
	[GW_AUDIT_TIME] = "time",
	[GW_AUDIT_VERSIONS] = "versions",
	[GW_AUDIT_RETENTION] = "retention",
	[GW_AUDIT_WRITABLE] = "writable",
	[GW_AUDIT_UNREADABLE] = "unreadable",
	[GW_AUDIT_RESTORE] = "restore",
	[GW_AUDIT_FSCK] = "fsck",
	[GW_AUDIT_LAG] = "lag",
	[GW_AUDIT_NOT_A_FILE] = "not-a-file",
	[GW_AUDIT_LEFTOVER] = "leftover",
	[GW_AUDIT_UNENFORCED] = "unenforced",
	[GW_AUDIT_EXPIRE_RESUME] = "expire-resume",
};

int gw_audit_kind_is_warning(gw_audit_kind kind)
{
	return kind == GW_AUDIT_LEFTOVER || kind == GW_AUDIT_UNENFORCED || kind == GW_AUDIT_EXPIRE_RESUME;
}

size_t gw_audit_report_warnings(const gw_audit_report *r)
{
	size_t i, n = 0;
	for (i = 0; i < r->nproblems; i++)
		n += gw_audit_kind_is_warning(r->problems[i].kind) != 0;
	return n;
}

const char *gw_audit_kind_name(gw_audit_kind kind)
{
	return (unsigned)kind < GW_AUDIT_KIND_COUNT ? kind_names[kind] : "unknown";
}

int gw_audit_report_init(gw_audit_report *r)
{
	memset(r, 0, sizeof(*r));
	if (pthread_mutex_init(&r->lock, NULL) != 0)
		return gw_error_set(GW_ERROR, "cannot create a mutex");
	return 0;
}

void gw_audit_report_dispose(gw_audit_report *r)
{
	size_t i;
	for (i = 0; i < r->nproblems; i++) {
		free(r->problems[i].repository);
		free(r->problems[i].key);
		free(r->problems[i].detail);
	}
	free(r->problems);
	free(r->resume_after);
	pthread_mutex_destroy(&r->lock);
	memset(r, 0, sizeof(*r));
}

int gw_audit_report_add(gw_audit_report *r, const char *repo, uint64_t lsn, const char *key, gw_audit_kind kind,
			const char *fmt, ...)
{
	gw_audit_problem p;
	va_list ap;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.kind = kind;
	p.lsn = lsn;
	va_start(ap, fmt);
	if (vasprintf(&p.detail, fmt, ap) < 0)
		p.detail = NULL;
	va_end(ap);
	p.repository = repo ? strdup(repo) : NULL;
	p.key = key ? strdup(key) : NULL;
	if (!p.detail || (repo && !p.repository) || (key && !p.key)) {
		free(p.detail);
		free(p.repository);
		free(p.key);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	pthread_mutex_lock(&r->lock);
	if (GW_ARRAY_RESERVE(r->problems, r->cap, r->nproblems + 1) == 0)
		r->problems[r->nproblems++] = p;
	else
		rc = -1;
	pthread_mutex_unlock(&r->lock);
	if (rc < 0) {
		free(p.detail);
		free(p.repository);
		free(p.key);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

static int str_or_empty_cmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int problem_cmp(const void *pa, const void *pb)
{
	const gw_audit_problem *a = pa, *b = pb;
	int c;
	if ((c = str_or_empty_cmp(a->repository, b->repository)) != 0)
		return c;
	if (a->lsn != b->lsn)
		return a->lsn < b->lsn ? -1 : 1;
	if ((c = str_or_empty_cmp(a->key, b->key)) != 0)
		return c;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return strcmp(a->detail, b->detail);
}

void gw_audit_report_sort(gw_audit_report *r)
{
	if (r->nproblems > 1)
		qsort(r->problems, r->nproblems, sizeof(*r->problems), problem_cmp);
}
