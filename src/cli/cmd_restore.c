/*
 * gitwal restore: rebuild repositories from full backups, several at once.
 */
#include "cli/cli.h"
#include "cli/progress.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"
#include "gitwal/restore.h"
#include "gitwal/time.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
	"usage: gitwal restore --to DIR [--repo REL]... [--until TIME | --lsn N] [--force]\n"
	"                      [--dry-run [--json]] [--jobs N] [--progress | --quiet]\n"
	"                      [--store URL] [--index FILE]\n"
	"\n"
	"Restore each selected repository into DIR/REL as a bare repository.\n"
	"\n"
	"  --until TIME    point in time: each repository exactly as of the last archived\n"
	"                  change at or before TIME (inclusive): the newest full backup\n"
	"                  taken at or before TIME, then the log segments after it up to\n"
	"                  TIME. TIME is RFC 3339 (2026-11-25T14:02:00Z, 2026-11-25T15:02:00+01:00,\n"
	"                  optional fraction of a second) or @[-]<unix seconds>[.fraction], from\n"
	"                  0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, checked strictly: a day\n"
	"                  the month does not have, an hour, minute, second or offset (-12:00\n"
	"                  to +14:00) out of range is a usage error naming it. A leap second\n"
	"                  (23:59:60 UTC at the end of a month) reads as 23:59:59.999999.\n"
	"                  A TIME before a repository's first full backup is an error for\n"
	"                  that repository (its state then is unknown), never a silent\n"
	"                  restore of the earliest state. A repository deleted at or before\n"
	"                  TIME is skipped and listed. A missing LSN or a broken hash chain\n"
	"                  in the range needed is an error naming the repository and LSN.\n"
	"                  Times the archiver could not observe (it was stopped, or its\n"
	"                  spool was full) are reported with their window; a TIME inside\n"
	"                  one gives the last state archived before it, with a note.\n"
	"  (neither)       the newest state archived: the latest full backup and every\n"
	"                  segment after it (as --until with a time after the last\n"
	"                  change); a repository whose last record is its deletion is\n"
	"                  skipped and listed\n"
	"                  Only what the archive proves absent at the time (deleted\n"
	"                  then, or no key of it stored before then) is skipped; any\n"
	"                  missing or damaged data fails the repository, named.\n"
	"  --lsn N         the full backup taken at LSN N alone (needs one --repo)\n"
	"  --dry-run       print the plan (full backup, segments, bytes to read, the refs\n"
	"                  and HEAD at the end, gaps) from the index, and change nothing;\n"
	"                  --json for one JSON object per repository per line\n"
	"\n"
	"  --to DIR        where to create the repositories (created if missing)\n"
	"  --repo REL      a repository to restore (repeatable; named twice, restored\n"
	"                  once); default: every repository the store holds a key of\n"
	"  --force         replace a target that exists and is not empty\n"
	"  --jobs N        repositories restored at once (default: cores, at most 8)\n" GW_PROGRESS_HELP
	"\n"
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
	"Exit status: 0 when every repository was restored (or skipped), 1 when one\n"
	"failed or a damaged key was found, 2 for a usage error.\n"
	"\n" GW_CLI_COMMON_HELP;

typedef struct {
	gw_cli *cli;
	char **repos;
	size_t count;
	gw_restore_opts opts;
	gw_sync_report report; /* restoring everything: what the sync of the whole store found damaged */
	int failed, skipped, json, explicit;
	size_t damaged;
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
	rc = gw_restore_full(run->cli->store, run->cli->index, rel, &opts, &res);
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
		print_gaps(rel, &res);
		printf("ok %s lsn=%llu time=%s segments=%llu objects=%llu refs=%llu bytes=%llu seconds=%.3f\n", rel,
		       (unsigned long long)res.lsn, when, (unsigned long long)res.segments, (unsigned long long)res.objects,
		       (unsigned long long)res.refs, (unsigned long long)res.bytes, res.seconds);
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
	if (run->count == *cap) {
		char **n = realloc(run->repos, (*cap = *cap ? *cap * 2 : 8) * sizeof(char *));
		if (!n)
			return gw_error_set(GW_ERROR, "out of memory");
		run->repos = n;
	}
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

int gw_cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		GW_CLI_COMMON_LONGOPTS,
		{"to", required_argument, 0, 't'},    {"repo", required_argument, 0, 'p'},
		{"lsn", required_argument, 0, 'l'},   {"force", no_argument, 0, 'f'},
		{"jobs", required_argument, 0, 'j'},  {"until", required_argument, 0, 'u'},
		{"dry-run", no_argument, 0, 'n'},     {"json", no_argument, 0, 'J'},
		GW_PROGRESS_LONGOPTS,
		{0, 0, 0, 0},
	};
	gw_cli cli = {0};
	restore_run run = {0};
	char *to = NULL;
	gw_progress_mode progress = GW_PROGRESS_AUTO;
	int c, rc = 0, jobs = 0;
	size_t cap = 0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(help, stdout);
			goto out;
		case 't':
			if (!*optarg) {
				rc = gw_cli_usage_error("restore", "option --to: the directory is empty");
				goto out;
			}
			free(to);
			to = gw_fs_absolute(optarg);
			break;
		case 'p':
			if (gw_repo_path_check(optarg) < 0) {
				rc = gw_cli_usage_error("restore", "option --repo: %s", gw_error_message());
				goto out;
			}
			if (add_repo(&run, &cap, optarg, 1) < 0) {
				rc = gw_cli_fail("restore", gw_error_code());
				goto out;
			}
			break;
		case 'l': {
			char *end;
			errno = 0;
			run.opts.lsn = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || run.opts.lsn == 0 || optarg[0] == '-') {
				rc = gw_cli_usage_error("restore", "option --lsn: '%s' is not a positive LSN", optarg);
				goto out;
			}
			break;
		}
		case 'f':
			run.opts.force = 1;
			break;
		case 'u':
			run.opts.until_set = 1;
			if (gw_time_parse(optarg, &run.opts.until_us) < 0) {
				rc = gw_cli_usage_error("restore", "option --until: %s", gw_error_message());
				goto out;
			}
			break;
		case 'n':
			run.opts.dry_run = 1;
			break;
		case 'J':
			run.json = 1;
			break;
		case 'j':
			if ((rc = gw_cli_parse_jobs("restore", optarg, &jobs)) != 0)
				goto out;
			break;
		default:
			if (gw_cli_common_option(&cli, c, optarg) || gw_progress_option(c, &progress))
				break;
			rc = gw_cli_usage_error("restore", "unknown option or missing value: '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = gw_cli_usage_error("restore", "unexpected argument '%s' (name repositories with --repo)", argv[optind]);
		goto out;
	}
	if (!to) {
		rc = gw_cli_usage_error("restore", "--to DIR is required");
		goto out;
	}
	if (run.opts.lsn && run.opts.until_set) {
		rc = gw_cli_usage_error("restore", "give --until or --lsn, not both");
		goto out;
	}
	if (!run.opts.lsn && !run.opts.until_set) {
		/* Neither: the newest state archived, as a database tool replays its log to the end. */
		run.opts.until_set = 1;
		run.opts.until_us = INT64_MAX;
	}
	if (run.json && !run.opts.dry_run) {
		rc = gw_cli_usage_error("restore", "--json goes with --dry-run");
		goto out;
	}
	if (run.opts.lsn && run.count != 1) {
		rc = gw_cli_usage_error("restore", "--lsn needs exactly one --repo");
		goto out;
	}
	run.opts.to = to;
	cli.jobs = jobs;
	if (gw_cli_resolve(&cli, 0) < 0 || gw_cli_open_store(&cli) < 0 || gw_cli_open_index(&cli) < 0) {
		rc = gw_cli_fail("restore", gw_error_code());
		goto out;
	}
	run.explicit = run.count > 0;
	if (run.count == 0) {
		/*
		 * Everything the store holds: bring the index up to date first, going
		 * on past damaged keys. Every repository a key names is restored (or
		 * fails, named), whether or not a full backup of it was recorded.
		 */
		char **indexed = NULL;
		size_t nindexed = 0, i;
		if (gw_index_sync_report(cli.index, cli.store, NULL, 0, &run.report) < 0 ||
		    gw_index_repos(cli.index, &indexed, &nindexed) < 0) {
			rc = gw_cli_fail("restore", gw_error_code());
			goto out;
		}
		for (i = 0; i < nindexed && rc == 0; i++)
			rc = add_repo(&run, &cap, indexed[i], 0);
		for (i = 0; i < run.report.nrepos && rc == 0; i++)
			rc = add_repo(&run, &cap, run.report.repos[i], 0);
		gw_repo_list_free(indexed, nindexed);
		if (rc < 0) {
			rc = gw_cli_fail("restore", gw_error_code());
			goto out;
		}
		sort_unique(&run);
		run.opts.index_synced = 1;
		run.opts.report = &run.report;
		if (run.count == 0) {
			fprintf(stderr, "gitwal restore: the store %s holds no backups\n", gw_store_url(cli.store));
			rc = 1;
			goto out;
		}
	}
	run.cli = &cli;
	pthread_mutex_init(&run.lock, NULL);
	gw_progress_phase(&run.counters, "repositories", run.count);
	run.progress = gw_progress_start("restore", progress, cli.store, &run.counters);
	gw_cli_parallel(run.count, cli.jobs, restore_one, &run);
	gw_progress_stop(run.progress);
	pthread_mutex_destroy(&run.lock);
	fprintf(stderr, "gitwal restore: %zu repositories, %d failed, %d skipped, %zu damaged keys, into %s\n", run.count,
		run.failed, run.skipped, run.damaged, to);
	rc = run.failed || run.damaged ? 1 : 0;
out:
	gw_sync_report_dispose(&run.report);
	gw_repo_list_free(run.repos, run.count);
	free(to);
	gw_cli_dispose(&cli);
	return rc;
}
