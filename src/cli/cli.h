/*
 * The gitwal command line: what the commands share (the common options and
 * their resolution, the store and index they open, error output, a worker
 * pool) and the commands, one file each, dispatched from main.c's table.
 * Options are declared in tables and parsed by options.h.
 */
#ifndef GITWAL_CLI_H
#define GITWAL_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "cli/options.h"

#include "gitwal/index.h"
#include "gitwal/store.h"

typedef struct gw_cli {
	char *root;
	char *store_url;
	char *index_path;
	int jobs;
	char *config_path;
	const gw_cli_spec *spec; /* the command's (gw_cli_parse): its options resolve too */
	const gw_opt *given[GW_CLI_MAX_OPTIONS]; /* options given a value, even 0 (gw_opt_given) */
	size_t ngiven;
	/* opened on demand */
	gw_store *store;
	gw_index *index;
	unsigned store_flags; /* GW_STORE_OPEN_* for gw_cli_open_store (the archive service defers checks) */
} gw_cli;

/*
 * The --jobs option of the commands that work on several things at once (a
 * command's options struct begins with its gw_cli). gitwal.jobs resolves it
 * for every command, offered or not.
 */
#define GW_CLI_JOBS(SHORT, HELP)                                                                             \
	{.type = GW_OPT_INT, .name = "jobs", .short_name = SHORT, .arg = "N", .offset = offsetof(gw_cli, jobs), \
	 .min = 1, .max = 256, .config = "gitwal.jobs", .help = HELP}

/*
 * Fill what the command line left unset: from the environment, then the
 * config file, then the defaults (the common options, and any of the
 * command's that name a variable or key).
 */
int gw_cli_resolve(gw_cli *cli, int need_root);
int gw_cli_open_store(gw_cli *cli);
int gw_cli_open_index(gw_cli *cli);
void gw_cli_dispose(gw_cli *cli);

/*
 * The damaged keys a sync found (of repo, or all when NULL), one line each on
 * stderr (repository, key, reason), except those a message already printed
 * (except_in) names; returns how many there are, printed or not.
 */
size_t gw_cli_report_problems(const char *cmd, const gw_sync_report *report, const char *repo, const char *except_in);
/*
 * 0 when the archive knows repo (a key of it was listed, or the index has a
 * record of it); otherwise 1, with a one-line error naming it.
 */
int gw_cli_repo_known(const char *cmd, gw_cli *cli, const gw_sync_report *report, const char *repo);
/*
 * The archive as a command that reads it (info, log) sees it: --repo (repo,
 * or NULL for all) checked, the options resolved, the store opened and the
 * index brought up to date with it into report (unless no_sync), the index
 * opened, and a repo the archive does not know refused. 0 to go on, else the
 * command's exit status, its error printed.
 */
int gw_cli_open_archive(const char *cmd, gw_cli *cli, const char *repo, int no_sync, gw_sync_report *report);

/* Run fn(i, payload) for i in [0, n) on `jobs` threads. */
void gw_cli_parallel(size_t n, int jobs, void (*fn)(size_t i, void *payload), void *payload);

/* The commands (one file each): the help and options of each, and what runs it. */
extern const gw_cli_spec gw_cmd_archive_spec, gw_cmd_backup_spec, gw_cmd_restore_spec, gw_cmd_info_spec,
	gw_cmd_log_spec, gw_cmd_index_spec, gw_cmd_audit_spec, gw_cmd_expire_spec;
int gw_cmd_backup(int argc, char **argv);
int gw_cmd_restore(int argc, char **argv);
int gw_cmd_info(int argc, char **argv);
int gw_cmd_index(int argc, char **argv);
int gw_cmd_archive(int argc, char **argv);
int gw_cmd_log(int argc, char **argv);
int gw_cmd_audit(int argc, char **argv);
int gw_cmd_expire(int argc, char **argv);
/* The state directory (malloc'd): $GITWAL_STATE_DIR, $XDG_STATE_HOME/gitwal or ~/.local/state/gitwal. */
char *gw_cli_state_dir(void);

#endif
