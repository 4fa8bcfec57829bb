/*
 * gitwal restore: rebuild repositories as they were at a time (a full backup
 * and the log segments after it) or from one full backup, several at once.
 */
#include "cli/cli.h"
#include "cli/progress.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"
#include "gitwal/restore.h"
#include "gitwal/time.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	gw_cli *cli;
	char **repos;
	size_t count;
	gw_restore_opts opts;
	gw_sync_report report; /* restoring everything: what the sync of the whole store found damaged */
	int failed, skipped, json, explicit;
	size_t damaged;
	size_t files_skipped; /* paths not restored, the archive holding them as not archived */
	pthread_mutex_t lock;
	gw_progress_counters counters; /* repositories, and the bytes of their plans */
	gw_progress *progress;
} restore_run;

static json_t *plan_json(const char *rel, const gw_restore_result *res)
{
	char when[40], full_when[40], from[40], to[40];
	json_t *o, *refs = json_object(), *gaps = json_array();
	size_t i;
	gw_time_format(res->time_us, when, sizeof(when));
	gw_time_format(res->full_time_us, full_when, sizeof(full_when));
	for (i = 0; refs && i < res->nend_refs; i++)
		json_object_set_new(refs, res->end_refs[i].name, json_string(res->end_refs[i].value));
	for (i = 0; gaps && i < res->ngaps; i++) {
		gw_time_format(res->gaps[i].from_us, from, sizeof(from));
		gw_time_format(res->gaps[i].to_us, to, sizeof(to));
		json_array_append_new(gaps, json_pack("{s:I, s:s, s:s, s:b}", "lsn", (json_int_t)res->gaps[i].lsn,
						      "unknown_from", from, "unknown_to", to, "covers_until",
						      res->gaps[i].covers_until));
	}
	o = json_pack("{s:s, s:{s:I, s:s}, s:I, s:s, s:I, s:I, s:I, s:o, s:o}", "repository", rel, "full", "lsn",
		      (json_int_t)res->full_lsn, "time", full_when, "lsn", (json_int_t)res->lsn, "time", when, "segments",
		      (json_int_t)res->segments, "refs_count", (json_int_t)res->refs, "bytes", (json_int_t)res->bytes,
		      "refs", refs, "gaps", gaps);
	return o;
}

static void print_plan(const char *rel, const gw_restore_result *res)
{
	char when[40], full_when[40];
	size_t i;
	gw_time_format(res->time_us, when, sizeof(when));
	gw_time_format(res->full_time_us, full_when, sizeof(full_when));
	printf("plan %s: full backup LSN %llu (%s), then %llu segments to LSN %llu (%s); %llu bytes to read\n", rel,
	       (unsigned long long)res->full_lsn, full_when, (unsigned long long)res->segments,
	       (unsigned long long)res->lsn, when, (unsigned long long)res->bytes);
	for (i = 0; i < res->nend_refs; i++)
		printf("  %s %s\n", res->end_refs[i].value, res->end_refs[i].name);
}

static void print_gaps(const char *rel, const gw_restore_result *res)
{
	char from[40], to[40];
	size_t i;
	for (i = 0; i < res->ngaps; i++) {
		gw_time_format(res->gaps[i].from_us, from, sizeof(from));
		gw_time_format(res->gaps[i].to_us, to, sizeof(to));
		if (res->gaps[i].covers_until)
			printf("note %s: the time asked for lies between %s and %s, when the archiver did not observe the "
			       "repository (LSN %llu): restored the last state archived before it, which the archive "
			       "cannot prove still held\n",
			       rel, from, to, (unsigned long long)res->gaps[i].lsn);
		else
			printf("note %s: states between %s and %s are unknown (the archiver did not observe them; "
			       "LSN %llu)\n",
			       rel, from, to, (unsigned long long)res->gaps[i].lsn);
	}
}

static void restore_one(size_t i, void *payload)
{
	restore_run *run = payload;
	gw_restore_result res;
	gw_restore_opts opts = run->opts;
	gw_sync_report mine = {0};
	const char *rel = run->repos[i];
	char when[40];
	int rc;
	if (run->explicit)
		opts.report = &mine; /* restore's sync goes on past damaged keys: they fail it only where needed */
	opts.progress = &run->counters;
	GW_PROGRESS_ADD(&run->counters, started, 1);
	rc = gw_restore_run(run->cli->store, run->cli->index, rel, &opts, &res);
	GW_PROGRESS_ADD(&run->counters, done, 1);
	pthread_mutex_lock(&run->lock);
	gw_progress_hold(run->progress);
	/* Its damaged keys, one line each, unless the failure below names them already. */
	run->damaged += gw_cli_report_problems("restore", opts.report, rel, rc < 0 ? gw_error_message() : NULL);
	gw_time_format(res.time_us, when, sizeof(when));
	if (rc < 0 && res.skipped && !run->explicit) {
		/*
		 * Restoring everything, what the archive proves absent then is listed;
		 * any other failure is one, and so is a repository named with --repo.
		 */
		run->skipped++;
		printf("skipped %s: %s\n", rel, gw_error_message());
	} else if (rc < 0) {
		run->failed++;
		printf("failed %s: %s\n", rel, gw_error_message());
		fprintf(stderr, "gitwal restore: %s\n", gw_error_message());
	} else if (run->opts.dry_run && run->json) {
		json_t *o = plan_json(rel, &res);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(o);
	} else if (run->opts.dry_run) {
		print_plan(rel, &res);
		print_gaps(rel, &res);
	} else {
		char skipped[48] = "";
		size_t k;
		print_gaps(rel, &res);
		/*
		 * Restored all the same (its refs and objects are whole): each path
		 * the archive could not keep is named, and counted (DESIGN.md 4.5).
		 */
		for (k = 0; k < res.files_skipped.n; k++)
			fprintf(stderr, "gitwal: warning: repository %s: %s was not archived (%s)\n", rel,
				res.files_skipped.items[k].path, (const char *)res.files_skipped.items[k].data);
		if (res.files_skipped.n)
			snprintf(skipped, sizeof(skipped), " files_not_restored=%zu", res.files_skipped.n);
		run->files_skipped += res.files_skipped.n;
		printf("ok %s lsn=%llu time=%s segments=%llu objects=%llu refs=%llu bytes=%llu seconds=%.3f%s\n", rel,
		       (unsigned long long)res.lsn, when, (unsigned long long)res.segments, (unsigned long long)res.objects,
		       (unsigned long long)res.refs, (unsigned long long)res.bytes, res.seconds, skipped);
	}
	fflush(stdout);
	gw_progress_release(run->progress);
	pthread_mutex_unlock(&run->lock);
	gw_restore_result_dispose(&res);
	gw_sync_report_dispose(&mine);
}

/* Add rel to the list; with unique, unless it is there (a repository named twice is restored once). */
static int add_repo(restore_run *run, size_t *cap, const char *rel, int unique)
{
	size_t i;
	for (i = 0; unique && i < run->count; i++)
		if (strcmp(run->repos[i], rel) == 0)
			return 0;
	if (GW_ARRAY_RESERVE(run->repos, *cap, run->count + 1) < 0)
		return GW_ERROR;
	if (!(run->repos[run->count] = strdup(rel)))
		return gw_error_set(GW_ERROR, "out of memory");
	run->count++;
	return 0;
}

static int rel_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort the list and drop repeated names (the index's and the listing's, merged). */
static void sort_unique(restore_run *run)
{
	size_t i, k = 0;
	if (run->count)
		qsort(run->repos, run->count, sizeof(char *), rel_cmp);
	for (i = 0; i < run->count; i++) {
		if (k && strcmp(run->repos[k - 1], run->repos[i]) == 0)
			free(run->repos[i]);
		else
			run->repos[k++] = run->repos[i];
	}
	run->count = k;
}

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	restore_run run;
	size_t cap; /* of run.repos */
	char *to;
	int progress;
} restore_opts;

static int take_to(void *opts, const char *value)
{
	restore_opts *o = opts;
	if (!*value)
		return gw_error_set(GW_EINVALID, "the directory is empty");
	free(o->to);
	return (o->to = gw_fs_absolute(value)) ? 0 : gw_error_set(GW_ERROR, "out of memory");
}

static int take_repo(void *opts, const char *value)
{
	restore_opts *o = opts;
	if (gw_repo_path_check(value) < 0)
		return GW_EINVALID;
	return add_repo(&o->run, &o->cap, value, 1);
}

static int take_lsn(void *opts, const char *value)
{
	restore_opts *o = opts;
	char *end;
	errno = 0;
	o->run.opts.lsn = strtoull(value, &end, 10);
	if (errno || *end || end == value || o->run.opts.lsn == 0 || value[0] == '-')
		return gw_error_set(GW_EINVALID, "'%s' is not a positive LSN", value);
	return 0;
}

static int take_until(void *opts, const char *value)
{
	restore_opts *o = opts;
	o->run.opts.until_set = 1;
	return gw_time_parse(value, &o->run.opts.until_us) < 0 ? GW_EINVALID : 0;
}

static const gw_opt options[] = {
	GW_OPT_CUSTOM_("until", "TIME", take_until,
		       "point in time: each repository exactly as of the last archived\n"
		       "change at or before TIME (inclusive): the newest full backup\n"
		       "taken at or before TIME, then the log segments after it up to\n"
		       "TIME. TIME is RFC 3339 (2026-11-25T14:02:00Z, 2026-11-25T15:02:00+01:00,\n"
		       "optional fraction of a second) or @[-]<unix seconds>[.fraction], from\n"
		       "0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, checked strictly: a day\n"
		       "the month does not have, an hour, minute, second or offset (-12:00\n"
		       "to +14:00) out of range is a usage error naming it. A leap second\n"
		       "(23:59:60 UTC at the end of a month) reads as 23:59:59.999999.\n"
		       "A TIME before a repository's first full backup is an error for\n"
		       "that repository (its state then is unknown), never a silent\n"
		       "restore of the earliest state. A repository deleted at or before\n"
		       "TIME is skipped and listed. A missing LSN or a broken hash chain\n"
		       "in the range needed is an error naming the repository and LSN.\n"
		       "Times the archiver could not observe (it was stopped, or its\n"
		       "spool was full) are reported with their window; a TIME inside\n"
		       "one gives the last state archived before it, with a note."),
	GW_OPT_OPERAND_("(neither)", "the newest state archived: the latest full backup and every\n"
				     "segment after it (as --until with a time after the last\n"
				     "change); a repository whose last record is its deletion is\n"
				     "skipped and listed\n"
				     "Only what the archive proves absent at the time (deleted\n"
				     "then, or no key of it stored before then) is skipped; any\n"
				     "missing or damaged data fails the repository, named."),
	GW_OPT_CUSTOM_("lsn", "N", take_lsn, "the full backup taken at LSN N alone (needs one --repo)"),
	GW_OPT_FLAG_("dry-run", restore_opts, run.opts.dry_run,
		     "print the plan (full backup, segments, bytes to read, the refs\n"
		     "and HEAD at the end, gaps) from the index, and change nothing;\n"
		     "--json for one JSON object per repository per line"),
	/* --help says it with --dry-run. */
	{.type = GW_OPT_FLAG, .name = "json", .offset = offsetof(restore_opts, run.json), .ival = 1,
	 .flags = GW_OPT_MAN_ONLY, .help = "with --dry-run: one JSON object per repository per line"},
	GW_OPT_TEXT_(""),
	GW_OPT_CUSTOM_("to", "DIR", take_to, "where to create the repositories (created if missing)"),
	GW_OPT_CUSTOM_("repo", "REL", take_repo,
		       "a repository to restore (repeatable; named twice, restored\n"
		       "once); default: every repository the store holds a key of"),
	GW_OPT_FLAG_("force", restore_opts, run.opts.force, "replace a target that exists and is not empty"),
	GW_OPT_FLAG_("standalone", restore_opts, run.opts.standalone,
		     "a fork backed up with its object pool made self-contained: the\n"
		     "objects it needs from the pool copied into a pack of its own,\n"
		     "no alternates (its pool is not restored for it)"),
	GW_CLI_JOBS('j', "repositories restored at once (default: cores, at most 8)"),
	GW_PROGRESS_OPTIONS(restore_opts, progress, ""),
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_restore_spec = {
	.name = "restore",
	.head = "usage: gitwal restore --to DIR [--repo REL]... [--until TIME | --lsn N] [--force]\n"
		"                      [--standalone] [--dry-run [--json]] [--jobs N]\n"
		"                      [--progress | --quiet] [--store URL] [--index FILE]\n"
		"\n"
		"Restore each selected repository into DIR/REL as a bare repository.\n"
		"A fork backed up with its object pool gets the pool restored too, as of the\n"
		"same time, into DIR/POOL (once per run, however many forks share it), and an\n"
		"objects/info/alternates naming it by a relative path (--standalone: none).\n"
		"\n",
	.options = options,
	.column = 18,
	.tail = "\n"
		"Safety: every byte is checked against the SHA-256 digests in the backup's\n"
		"manifest, and what is installed against itself as it streams: each pack's\n"
		"SHA-1 trailer and object count, every object's offset and CRC32 against the\n"
		"pack index, and every ref's object in the installed pack.\n"
		"Each repository is built in a temporary directory beside its target\n"
		"and renamed into place, so a failed restore leaves nothing half-made. A target\n"
		"that exists and is not empty is never touched without --force.\n"
		"The index is a cache: repositories it does not know are looked up in the\n"
		"store, so restore works on a fresh machine given only --store. A stored key\n"
		"that cannot be read or is damaged is named on stderr in one line (repository,\n"
		"key, reason); it fails its repository only if the state asked for may depend\n"
		"on it, and never stops the others.\n"
		"A file of a repository's own (config, custom_hooks/...) that the backup could\n"
		"not keep (a fifo, a file above 1 MiB, unreadable...) was recorded as not\n"
		"archived: it is named on stderr, one warning line each, counted in its\n"
		"\"ok\" line (files_not_restored=N) and the summary, and nothing is created\n"
		"for it; the repository counts as restored (its refs and objects are whole).\n"
		"Exit status: 0 when every repository was restored (or skipped), 1 when one\n"
		"failed or a damaged key was found, 2 for a usage error.\n",
	.unexpected = " (name repositories with --repo)",
};

int gw_cmd_restore(int argc, char **argv)
{
	restore_opts o = {0};
	gw_cli *cli = &o.cli;
	int rc, operands;

	if ((rc = gw_cli_parse(&gw_cmd_restore_spec, argc, argv, &o, &operands)) != GW_CLI_GO)
		goto out;
	rc = 0;
	if (!o.to) {
		rc = gw_cli_usage_error("restore", "--to DIR is required");
		goto out;
	}
	if (o.run.opts.lsn && o.run.opts.until_set) {
		rc = gw_cli_usage_error("restore", "give --until or --lsn, not both");
		goto out;
	}
	if (!o.run.opts.lsn && !o.run.opts.until_set) {
		/* Neither: the newest state archived, as a database tool replays its log to the end. */
		o.run.opts.until_set = 1;
		o.run.opts.until_us = INT64_MAX;
	}
	if (o.run.json && !o.run.opts.dry_run) {
		rc = gw_cli_usage_error("restore", "--json goes with --dry-run");
		goto out;
	}
	if (o.run.opts.lsn && o.run.count != 1) {
		rc = gw_cli_usage_error("restore", "--lsn needs exactly one --repo");
		goto out;
	}
	o.run.opts.to = o.to;
	if (gw_cli_resolve(cli, 0) < 0 || gw_cli_open_store(cli) < 0 || gw_cli_open_index(cli) < 0) {
		rc = gw_cli_fail("restore");
		goto out;
	}
	o.run.explicit = o.run.count > 0;
	if (o.run.count == 0) {
		/*
		 * Everything the store holds: bring the index up to date first, going
		 * on past damaged keys. Every repository a key names is restored (or
		 * fails, named), whether or not a full backup of it was recorded.
		 */
		char **indexed = NULL;
		size_t nindexed = 0, i;
		if (gw_index_sync_report(cli->index, cli->store, NULL, 0, &o.run.report) < 0 ||
		    gw_index_repos(cli->index, &indexed, &nindexed) < 0) {
			rc = gw_cli_fail("restore");
			goto out;
		}
		for (i = 0; i < nindexed && rc == 0; i++)
			rc = add_repo(&o.run, &o.cap, indexed[i], 0);
		for (i = 0; i < o.run.report.nrepos && rc == 0; i++)
			rc = add_repo(&o.run, &o.cap, o.run.report.repos[i], 0);
		gw_repo_list_free(indexed, nindexed);
		if (rc < 0) {
			rc = gw_cli_fail("restore");
			goto out;
		}
		sort_unique(&o.run);
		o.run.opts.index_synced = 1;
		o.run.opts.report = &o.run.report;
		if (o.run.count == 0) {
			fprintf(stderr, "gitwal restore: the store %s holds no backups\n", gw_store_url(cli->store));
			rc = 1;
			goto out;
		}
	}
	o.run.cli = cli;
	/* One registry for the run: a pool shared by members is restored once (DESIGN.md 19). */
	if (!o.run.opts.dry_run && gw_restore_pools_new(&o.run.opts.pools) < 0) {
		rc = gw_cli_fail("restore");
		goto out;
	}
	pthread_mutex_init(&o.run.lock, NULL);
	gw_progress_phase(&o.run.counters, "repositories", o.run.count);
	o.run.progress = gw_progress_start("restore", (gw_progress_mode)o.progress, cli->store, &o.run.counters);
	gw_cli_parallel(o.run.count, cli->jobs, restore_one, &o.run);
	gw_progress_stop(o.run.progress);
	pthread_mutex_destroy(&o.run.lock);
	{
		char files[64] = "";
		if (o.run.files_skipped) /* not archived, so not restored: named above, no failure */
			snprintf(files, sizeof(files), ", %zu files not restored", o.run.files_skipped);
		fprintf(stderr, "gitwal restore: %zu repositories, %d failed, %d skipped, %zu damaged keys%s, into %s\n",
			o.run.count, o.run.failed, o.run.skipped, o.run.damaged, files, o.to);
	}
	rc = o.run.failed || o.run.damaged ? 1 : 0;
out:
	gw_restore_pools_free(o.run.opts.pools);
	gw_sync_report_dispose(&o.run.report);
	gw_repo_list_free(o.run.repos, o.run.count);
	free(o.to);
	gw_cli_dispose(cli);
	return rc;
}
