/*
 * The gitwal command line: shared option handling (command line, then the
 * environment, then the config file, then defaults) and the commands, one
 * file each, dispatched from main.c.
 */
#ifndef GITWAL_CLI_H
#define GITWAL_CLI_H

#include <stdio.h>

#include "gitwal/index.h"
#include "gitwal/store.h"

typedef struct gw_cli {
	char *root;
	char *store_url;
	char *index_path;
	int jobs;
	char *config_path;
	/* opened on demand */
	gw_store *store;
	gw_index *index;
	unsigned store_flags; /* GW_STORE_OPEN_* for gw_cli_open_store (the archive service defers checks) */
} gw_cli;

/* The long options every command accepts, for its getopt_long table. */
#define GW_CLI_COMMON_LONGOPTS                                                                      \
	{"root", required_argument, 0, 'R'}, {"store", required_argument, 0, 'S'},                 \
	{"index", required_argument, 0, 'I'}, {"config", required_argument, 0, 'C'},               \
	{"help", no_argument, 0, 'h'}
/* Take a common option (its getopt code c); returns 1 if c was one, 0 if not. */
int gw_cli_common_option(gw_cli *cli, int c, const char *value);
/* Fill what is still unset from the environment, the config file and defaults. */
int gw_cli_resolve(gw_cli *cli, int need_root);
int gw_cli_open_store(gw_cli *cli);
int gw_cli_open_index(gw_cli *cli);
void gw_cli_dispose(gw_cli *cli);

/* Print "gitwal CMD: message" to stderr; returns the exit code for it. */
int gw_cli_fail(const char *cmd, int code);
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
int gw_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gw_cli_parse_jobs(const char *cmd, const char *value, int *jobs);
/*
 * A finite number for option --opt in [min, max] (above min when
 * min_exclusive); otherwise a usage error naming the option (returns 2).
 */
int gw_cli_parse_number(const char *cmd, const char *opt, const char *value, double min, double max,
			int min_exclusive, double *out);

/* Run fn(i, payload) for i in [0, n) on `jobs` threads. */
void gw_cli_parallel(size_t n, int jobs, void (*fn)(size_t i, void *payload), void *payload);

int gw_cmd_backup(int argc, char **argv);
int gw_cmd_restore(int argc, char **argv);
int gw_cmd_info(int argc, char **argv);
int gw_cmd_index(int argc, char **argv);
int gw_cmd_archive(int argc, char **argv);
int gw_cmd_log(int argc, char **argv);
int gw_cmd_audit(int argc, char **argv);
/* The state directory (malloc'd): $GITWAL_STATE_DIR, $XDG_STATE_HOME/gitwal or ~/.local/state/gitwal. */
char *gw_cli_state_dir(void);

#define GW_CLI_COMMON_HELP                                                                              \
	"Common options (also from the environment or the config file):\n"                            \
	"  --root DIR      the directory holding the bare repositories\n"                              \
	"                  [GITWAL_ROOT, gitwal.root]\n"                                                \
	"  --store URL     where backups go: file:///path (default: file://$STATE/store)\n"            \
	"                  or s3://BUCKET/PREFIX?PARAM=VALUE&... [GITWAL_STORE, gitwal.store]\n"        \
	"                  S3 parameters: endpoint=URL (default $AWS_ENDPOINT_URL_S3, else\n"           \
	"                  https://s3.REGION.amazonaws.com), region=R ($AWS_REGION, else us-east-1),\n" \
	"                  path_style=true|false (false), lock=compliance|governance with\n"           \
	"                  retain=Nd|Nh (Object Lock on every object; the bucket must have it),\n"     \
	"                  ca_file=PATH (extra CAs; TLS is always verified), retries=N (5),\n"       \
	"                  upload_max_age=24h, time limits connect_timeout=5s, stall_timeout=5s,\n"   \
	"                  first_byte_timeout=10s, deadline=60s (README, S3 stores).\n"                \
	"                  S3 credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"               \
	"                  AWS_SESSION_TOKEN, else AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials\n" \
	"                  (mode 0600; profile $AWS_PROFILE or default); never in the URL.\n"          \
	"  --index FILE    the local SQLite index, a cache of the store (default: $STATE/index.db)\n"  \
	"                  [GITWAL_INDEX, gitwal.index]\n"                                              \
	"  --config FILE   a git-config file with a [gitwal] section\n"                                \
	"                  [GITWAL_CONFIG; default: $XDG_CONFIG_HOME/gitwal/config if it exists]\n"    \
	"  $STATE is $GITWAL_STATE_DIR, else $XDG_STATE_HOME/gitwal, else ~/.local/state/gitwal.\n"   \
	"  Precedence: command line, then environment, then config file, then defaults.\n"

#endif
