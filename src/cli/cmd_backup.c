/*
 * gitwal backup: full backups of the named repositories (or all under the
 * root), several at once. One line per repository; a failure in one does
 * not stop the others, and the exit status reports whether any failed.
 */
#include "cli/cli.h"
#include "cli/progress.h"
#include "gitwal/backup.h"
#include "gitwal/error.h"
#include "gitwal/repo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	gw_cli *cli;
	char **repos;
	size_t count;
	int failed;
	pthread_mutex_t lock;
	gw_progress_counters counters; /* repositories, and the bytes of their packs */
	gw_progress *progress;
	gw_backup_run *run; /* each repository once, a pool its members backed up too */
} backup_run;

static void backup_one(size_t i, void *payload)
{
	backup_run *run = payload;
	gw_backup_result res;
	gw_backup_opts opts = {.progress = &run->counters, .pooled = 1, .run = run->run};
	const char *rel = run->repos[i];
	int rc;
	GW_PROGRESS_ADD(&run->counters, started, 1);
	rc = gw_backup_full_opts(run->cli->store, run->cli->index, run->cli->root, rel, &opts, &res);
	GW_PROGRESS_ADD(&run->counters, done, 1);
	pthread_mutex_lock(&run->lock);
	gw_progress_hold(run->progress);
	if (rc < 0) {
		run->failed++;
		printf("failed %s: %s\n", rel, gw_error_message());
		fprintf(stderr, "gitwal backup: %s\n", gw_error_message());
	} else {
		char skipped[48] = "";
		if (res.files_skipped) {
			/* Backed up all the same: its refs and objects are whole (DESIGN.md 4.5). */
			snprintf(skipped, sizeof(skipped), " files_skipped=%llu", (unsigned long long)res.files_skipped);
			fprintf(stderr, "gitwal: warning: repository %s: %llu of its files not archived (restore names each)\n",
				rel, (unsigned long long)res.files_skipped);
		}
		printf("ok %s lsn=%llu objects=%llu refs=%llu bytes=%llu duplicates=%llu loose=%llu seconds=%.3f%s\n",
		       rel, (unsigned long long)res.lsn, (unsigned long long)res.objects, (unsigned long long)res.refs,
		       (unsigned long long)res.bundle_bytes, (unsigned long long)res.duplicates,
		       (unsigned long long)res.loose, res.seconds, skipped);
	}
	fflush(stdout);
	gw_progress_release(run->progress);
	pthread_mutex_unlock(&run->lock);
}

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	int all, progress;
} backup_opts;

static const gw_opt options[] = {
	GW_OPT_OPERAND_("REL...", "repositories by their path relative to the root (group/x.git)"),
	GW_OPT_FLAG_("all", backup_opts, all,
		     "every bare repository under the root (directories whose names\n"
		     "start with '.' are skipped; symlinks are not followed, so\n"
		     "each repository is backed up once, under its real path)"),
	GW_CLI_JOBS('j', "repositories backed up at once (default: cores, at most 8)\n"
			 "[gitwal.jobs]"),
	GW_PROGRESS_OPTIONS(backup_opts, progress, ""),
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_backup_spec = {
	.name = "backup",
	.head = "usage: gitwal backup [--root DIR] [--store URL] [--index FILE] [--jobs N]\n"
		"                     [--progress | --quiet] (--all | REL...)\n"
		"\n"
		"Take a full backup of each repository: a standard Git bundle of all its refs\n"
		"(restorable with plain 'git clone --mirror X.bundle'), the bundle's pack index,\n"
		"and a manifest written last as the commit point. The manifest also keeps the\n"
		"repository's config, description, info/attributes and custom_hooks/ (modes\n"
		"included, symlinks as links, never followed); what it cannot keep there (a\n"
		"fifo, a socket, a file above 1 MiB, an unreadable one) is recorded as not\n"
		"archived, counted (files_skipped=N on the 'ok' line, a warning on stderr)\n"
		"and named by restore, and never fails the backup. Nothing in the store is ever\n"
		"overwritten; each backup gets the repository's next LSN. Backups are safe while\n"
		"the repository is pushed to or gc'd.\n"
		"\n",
	.options = options,
	.column = 18,
	.tail = "\n"
		"Prints one line per repository: 'ok REL lsn=N ...' or 'failed REL: reason'.\n"
		"Exit status 1 if any repository failed (the others are still backed up).\n"
		"Refused (failed, with the reason), as no faithful copy of them can be made:\n"
		"alternates that leave the root, loop or name no repository under it, shallow\n"
		"clones, partial clones, reftable repositories, and any Git extension\n"
		"(extensions.*) gitwal does not understand.\n"
		"A fork linked to an object pool under the root (objects/info/alternates) is\n"
		"backed up after its pool (a full backup of the pool first, once per run\n"
		"however many forks share it), keeping only the objects the pool's backup\n"
		"does not hold; its manifest names the pool.\n"
		"SHA-256 repositories are backed up (a v3 bundle, 32-byte ids throughout).\n",
	.flags = GW_CLI_OPERANDS,
};

int gw_cmd_backup(int argc, char **argv)
{
	backup_opts o = {0};
	backup_run run = {0};
	int rc, i, first;

	if ((rc = gw_cli_parse(&gw_cmd_backup_spec, argc, argv, &o, &first)) != GW_CLI_GO)
		goto out;
	rc = 0;
	if (o.all == (first < argc)) {
		rc = gw_cli_usage_error("backup", o.all ? "give either --all or repositories, not both"
							: "name the repositories to back up, or give --all");
		goto out;
	}
	for (i = first; i < argc; i++)
		if (gw_repo_path_check(argv[i]) < 0) {
			rc = gw_cli_usage_error("backup", "%s", gw_error_message());
			goto out;
		}
	if (gw_cli_resolve(&o.cli, 1) < 0 || gw_cli_open_store(&o.cli) < 0 || gw_cli_open_index(&o.cli) < 0) {
		rc = gw_cli_fail("backup");
		goto out;
	}
	if (o.all) {
		if (gw_repo_discover(o.cli.root, &run.repos, &run.count) < 0) {
			rc = gw_cli_fail("backup");
			goto out;
		}
		if (run.count == 0)
			fprintf(stderr, "gitwal backup: no bare repositories under %s\n", o.cli.root);
	} else {
		run.count = (size_t)(argc - first);
		if (!(run.repos = calloc(run.count, sizeof(char *)))) {
			rc = (gw_error_set(GW_ERROR, "out of memory"), gw_cli_fail("backup"));
			run.count = 0;
			goto out;
		}
		for (i = first; i < argc; i++)
			if (!(run.repos[i - first] = strdup(argv[i]))) {
				rc = (gw_error_set(GW_ERROR, "out of memory"), gw_cli_fail("backup"));
				goto out;
			}
	}
	if (gw_backup_run_new(&run.run) < 0) {
		rc = gw_cli_fail("backup");
		goto out;
	}
	run.cli = &o.cli;
	pthread_mutex_init(&run.lock, NULL);
	gw_progress_phase(&run.counters, "repositories", run.count);
	run.progress = gw_progress_start("backup", (gw_progress_mode)o.progress, o.cli.store, &run.counters);
	gw_cli_parallel(run.count, o.cli.jobs, backup_one, &run);
	gw_progress_stop(run.progress);
	pthread_mutex_destroy(&run.lock);
	fprintf(stderr, "gitwal backup: %zu repositories, %d failed, store %s\n", run.count, run.failed,
		gw_store_url(o.cli.store));
	rc = run.failed ? 1 : 0;
out:
	gw_backup_run_free(run.run);
	gw_repo_list_free(run.repos, run.count);
	gw_cli_dispose(&o.cli);
	return rc;
}
