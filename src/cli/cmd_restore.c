/*
 * gitwal restore: rebuild repositories from full backups, several at once.
 */
#include "cli/cli.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"
#include "gitwal/restore.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
	"usage: gitwal restore --to DIR [--repo REL]... [--lsn N] [--force] [--jobs N]\n"
	"                      [--store URL] [--index FILE]\n"
	"\n"
	"Restore the latest full backup (or the one at LSN N) of each selected\n"
	"repository into DIR/REL as a bare repository with the refs, HEAD and objects\n"
	"it had when the backup was taken.\n"
	"\n"
	"  --to DIR        where to create the repositories (created if missing)\n"
	"  --repo REL      a repository to restore (repeatable); default: every\n"
	"                  repository that has a backup in the store\n"
	"  --lsn N         restore the full backup taken at LSN N (needs one --repo)\n"
	"  --force         replace a target that exists and is not empty\n"
	"  --jobs N        repositories restored at once (default: cores, at most 8)\n"
	"\n"
	"Safety: every byte is checked against the SHA-256 digests in the backup's\n"
	"manifest. Each repository is built in a temporary directory beside its target\n"
	"and renamed into place, so a failed restore leaves nothing half-made. A target\n"
	"that exists and is not empty is never touched without --force.\n"
	"The index is a cache: repositories it does not know are looked up in the\n"
	"store, so restore works on a fresh machine given only --store.\n"
	"\n" GW_CLI_COMMON_HELP;

typedef struct {
	gw_cli *cli;
	char **repos;
	size_t count;
	gw_restore_opts opts;
	int failed;
	pthread_mutex_t lock;
} restore_run;

static void restore_one(size_t i, void *payload)
{
	restore_run *run = payload;
	gw_restore_result res;
	const char *rel = run->repos[i];
	int rc = gw_restore_full(run->cli->store, run->cli->index, rel, &run->opts, &res);
	pthread_mutex_lock(&run->lock);
	if (rc < 0) {
		run->failed++;
		printf("failed %s: %s\n", rel, gw_error_message());
		fprintf(stderr, "gitwal restore: %s\n", gw_error_message());
	} else {
		printf("ok %s lsn=%llu objects=%llu refs=%llu bytes=%llu seconds=%.3f\n", rel,
		       (unsigned long long)res.lsn, (unsigned long long)res.objects, (unsigned long long)res.refs,
		       (unsigned long long)res.bytes, res.seconds);
	}
	fflush(stdout);
	pthread_mutex_unlock(&run->lock);
}

int gw_cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		GW_CLI_COMMON_LONGOPTS,
		{"to", required_argument, 0, 't'},    {"repo", required_argument, 0, 'p'},
		{"lsn", required_argument, 0, 'l'},   {"force", no_argument, 0, 'f'},
		{"jobs", required_argument, 0, 'j'},  {0, 0, 0, 0},
	};
	gw_cli cli = {0};
	restore_run run = {0};
	char *to = NULL;
	int c, rc = 0, jobs = 0;
	size_t cap = 0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(help, stdout);
			goto out;
		case 't':
			free(to);
			to = gw_fs_absolute(optarg);
			break;
		case 'p':
			if (gw_repo_path_check(optarg) < 0) {
				rc = gw_cli_usage_error("restore", "option --repo: %s", gw_error_message());
				goto out;
			}
			if (run.count == cap) {
				char **n = realloc(run.repos, (cap = cap ? cap * 2 : 8) * sizeof(char *));
				if (!n)
					goto out;
				run.repos = n;
			}
			run.repos[run.count++] = strdup(optarg);
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
		case 'j':
			if ((rc = gw_cli_parse_jobs("restore", optarg, &jobs)) != 0)
				goto out;
			break;
		default:
			if (gw_cli_common_option(&cli, c, optarg))
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
	if (run.count == 0) {
		/* Everything the store holds: bring the index up to date first. */
		if (gw_index_sync(cli.index, cli.store, NULL) < 0 ||
		    gw_index_repos(cli.index, &run.repos, &run.count) < 0) {
			rc = gw_cli_fail("restore", gw_error_code());
			goto out;
		}
		if (run.count == 0) {
			fprintf(stderr, "gitwal restore: the store %s holds no backups\n", gw_store_url(cli.store));
			rc = 1;
			goto out;
		}
	}
	run.cli = &cli;
	pthread_mutex_init(&run.lock, NULL);
	gw_cli_parallel(run.count, cli.jobs, restore_one, &run);
	pthread_mutex_destroy(&run.lock);
	fprintf(stderr, "gitwal restore: %zu repositories, %d failed, into %s\n", run.count, run.failed, to);
	rc = run.failed ? 1 : 0;
out:
	gw_repo_list_free(run.repos, run.count);
	free(to);
	gw_cli_dispose(&cli);
	return rc;
}
