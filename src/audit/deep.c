/*
 * The audit's --deep check of one repository: its latest archived state (the
 * latest full backup and every segment after it) is restored with the normal
 * restore code into a scratch directory, then `git fsck --connectivity-only`
 * proves every ref tip's history is there, and, given the live root, its
 * refs and HEAD are compared with the live repository's: whatever differs is
 * how far the archive lags.
 */
#include "gitwal/audit.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"
#include "gitwal/restore.h"
#include "gitwal/time.h"
#include "backup/source.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define LAG_NAMES_MAX 5

/* Run git fsck --connectivity-only on dir; 0 when it passes, else its first error line in msg. */
static int run_fsck(const char *dir, const char *errfile, char *msg, size_t msgsize)
{
	char *argv[] = {"git", "--git-dir", (char *)dir, "fsck", "--connectivity-only", "--no-progress", NULL};
	posix_spawn_file_actions_t fa;
	int status, rc;
	pid_t pid;
	FILE *f;

	*msg = '\0';
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return gw_error_set_errno(GW_EIO, "cannot run git fsck");
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return gw_error_set_errno(GW_EIO, "waiting for git fsck");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if ((f = fopen(errfile, "r"))) {
		if (fgets(msg, (int)msgsize, f))
			msg[strcspn(msg, "\n")] = '\0';
		fclose(f);
	}
	if (!*msg)
		snprintf(msg, msgsize, "git fsck exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 1;
}

/* One ref's value as text: its symbolic target, or its object id. */
static void ref_value(const gw_ref *r, char *out, size_t n)
{
	char hex[GW_HEX_MAX];
	if (r->symbolic) {
		snprintf(out, n, "ref: %s", r->symbolic);
		return;
	}
	gw_hex_encode(hex, r->oid, 20); /* its first 12 digits are shown, whatever the format */
	snprintf(out, n, "%.12s", hex);
}

typedef struct {
	size_t differ;
	char names[1024];
	size_t len;
} lag;

static void lag_note(lag *l, const char *name, const gw_ref *arch, const gw_ref *live)
{
	char a[300] = "none", b[300] = "none";
	if (arch)
		ref_value(arch, a, sizeof(a));
	if (live)
		ref_value(live, b, sizeof(b));
	if (l->differ++ < LAG_NAMES_MAX && l->len < sizeof(l->names))
		l->len += (size_t)snprintf(l->names + l->len, sizeof(l->names) - l->len, "%s%s (archive %s, live %s)",
					   l->len ? "; " : "", name, a, b);
}

static int ref_same(const gw_ref *x, const gw_ref *y)
{
	if (!!x->symbolic != !!y->symbolic)
		return 0;
	if (x->symbolic)
		return !strcmp(x->symbolic, y->symbolic);
	return !memcmp(x->oid, y->oid, sizeof(x->oid)); /* zero beyond a sha1 id's 20 bytes */
}

/* Compare the restored repository's refs and HEAD with the live one's. */
static int compare_live(const char *restored_root, const char *live_root, const char *rel, lag *l)
{
	gw_source *arch = NULL, *live = NULL;
	gw_ref *ar = NULL, *lr = NULL, ah, lh;
	size_t an = 0, ln = 0, i = 0, j = 0;
	int rc;

	memset(&ah, 0, sizeof(ah));
	memset(&lh, 0, sizeof(lh));
	/* Only refs are read: a pooled member is compared as any other (its pool restored beside it). */
	if ((rc = gw_source_open_pooled(&arch, restored_root, rel)) < 0 ||
	    (rc = gw_source_open_pooled(&live, live_root, rel)) < 0 ||
	    (rc = gw_source_read_refs(arch, &ar, &an, &ah)) < 0 || (rc = gw_source_read_refs(live, &lr, &ln, &lh)) < 0)
		goto out;
	/* Both lists are sorted by name: one merge pass. */
	while (i < an || j < ln) {
		int c = i == an ? 1 : j == ln ? -1 : strcmp(ar[i].name, lr[j].name);
		if (c < 0) {
			lag_note(l, ar[i].name, &ar[i], NULL);
			i++;
		} else if (c > 0) {
			lag_note(l, lr[j].name, NULL, &lr[j]);
			j++;
		} else {
			if (!ref_same(&ar[i], &lr[j]))
				lag_note(l, ar[i].name, &ar[i], &lr[j]);
			i++;
			j++;
		}
	}
	if (!ref_same(&ah, &lh))
		lag_note(l, "HEAD", &ah, &lh);
out:
	gw_refs_free(ar, an);
	gw_refs_free(lr, ln);
	gw_ref_dispose(&ah);
	gw_ref_dispose(&lh);
	gw_source_free(arch);
	gw_source_free(live);
	return rc;
}

/* As the archiver sees it: a repository reached only through a symlink is not there (DESIGN.md 10.4). */
static int live_exists(const char *live_root, const char *rel)
{
	return gw_repo_present(live_root, rel);
}

int gw_audit_deep_unarchived(const char *live_root, const char *rel, gw_audit_report *report)
{
	gw_source *src = NULL;
	int rc = gw_source_open_pooled(&src, live_root, rel); /* as the archiver opens it */

	gw_source_free(src);
	if (rc == GW_EUNSUPPORTED)
		/* The archiver refuses it too (event=refused): the reason is the finding. */
		rc = gw_audit_report_add(report, rel, 0, NULL, GW_AUDIT_LAG,
					 "the live repository under %s has no full backup in the archive: %s", live_root,
					 gw_error_message());
	else
		rc = gw_audit_report_add(report, rel, 0, NULL, GW_AUDIT_LAG,
					 "the live repository under %s has no full backup in the archive", live_root);
	__atomic_add_fetch(&report->counts.lagging, 1, __ATOMIC_RELAXED);
	return rc;
}

int gw_audit_deep_repo(gw_store *store, const char *rel, const gw_audit_opts *opts, const char *scratch,
		       gw_index *scratch_index, gw_audit_report *report)
{
	gw_restore_opts ro;
	gw_restore_result res;
	char to[4200], path[8400], errfile[4300], msg[512], when[40];
	lag l;
	int rc;

	memset(&ro, 0, sizeof(ro));
	memset(&l, 0, sizeof(l));
	snprintf(to, sizeof(to), "%s/restored", scratch);
	snprintf(path, sizeof(path), "%s/%s", to, rel);
	snprintf(errfile, sizeof(errfile), "%s/fsck.err", scratch);
	ro.to = to;
	ro.until_set = 1;
	ro.until_us = gw_time_now_us();
	ro.progress = opts->progress;
	ro.skeleton_files = 1;
	if (gw_restore_run(store, scratch_index, rel, &ro, &res) < 0) {
		gw_restore_result_dispose(&res);
		gw_remove_tree(to); /* a pool restored for a member that failed */
		if (res.skipped) {
			/* Deleted, as the archive says: it lags only if the repository is back. */
			if (opts->live_root && live_exists(opts->live_root, rel)) {
				gw_audit_report_add(report, rel, 0, NULL, GW_AUDIT_LAG,
						    "the archive records the repository as deleted; it exists under %s",
						    opts->live_root);
				__atomic_add_fetch(&report->counts.lagging, 1, __ATOMIC_RELAXED);
			}
			return 0;
		}
		return gw_audit_report_add(report, rel, 0, NULL, GW_AUDIT_RESTORE, "the latest state cannot be restored: %s",
					   gw_error_message());
	}
	__atomic_add_fetch(&report->counts.restored, 1, __ATOMIC_RELAXED);
	if ((rc = run_fsck(path, errfile, msg, sizeof(msg))) < 0)
		goto out;
	if (rc > 0)
		gw_audit_report_add(report, rel, res.lsn, NULL, GW_AUDIT_FSCK,
				    "the restored latest state (LSN %llu) is not connected: %s", (unsigned long long)res.lsn,
				    msg);
	rc = 0;
	if (opts->live_root) {
		gw_time_format(res.time_us, when, sizeof(when));
		if (!live_exists(opts->live_root, rel)) {
			gw_audit_report_add(report, rel, res.lsn, NULL, GW_AUDIT_LAG,
					    "the archive's latest state (LSN %llu, %s) has the repository; %s does not",
					    (unsigned long long)res.lsn, when, opts->live_root);
			__atomic_add_fetch(&report->counts.lagging, 1, __ATOMIC_RELAXED);
		} else if (compare_live(to, opts->live_root, rel, &l) < 0) {
			gw_audit_report_add(report, rel, res.lsn, NULL, GW_AUDIT_LAG, "cannot compare with the live repository: %s",
					    gw_error_message());
		} else if (l.differ) {
			gw_audit_report_add(report, rel, res.lsn, NULL, GW_AUDIT_LAG,
					    "%zu ref%s differ%s from the live repository; the archive's latest state is LSN "
					    "%llu at %s: %s%s",
					    l.differ, l.differ == 1 ? "" : "s", l.differ == 1 ? "s" : "",
					    (unsigned long long)res.lsn, when, l.names, l.differ > LAG_NAMES_MAX ? "; ..." : "");
			__atomic_add_fetch(&report->counts.lagging, 1, __ATOMIC_RELAXED);
		}
	}
out:
	gw_restore_result_dispose(&res);
	/* The repository, and a pooled member's pool restored with it (its fsck read the member through it). */
	gw_remove_tree(to);
	return rc;
}
