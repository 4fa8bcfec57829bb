/*
 * What every command shares: the common options (their table, and their
 * resolution from the environment, the config file and the defaults), the
 * store and index opened on demand, the one-line reports of damaged keys,
 * and the small worker pool that backup, restore and audit use to work on
 * several repositories or records at once.
 */
#include "cli/cli.h"
#include "util/thread.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"

#include <git2.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

size_t gw_cli_report_problems(const char *cmd, const gw_sync_report *report, const char *repo, const char *except_in)
{
	size_t i, n = 0;
	for (i = 0; report && i < report->nproblems; i++) {
		const gw_sync_problem *p = &report->problems[i];
		if (repo && strcmp(p->repository, repo) != 0)
			continue;
		n++;
		if (!except_in || !strstr(except_in, p->key))
			fprintf(stderr, "gitwal %s: damaged %s: key %s: %s\n", cmd, p->repository, p->key, p->reason);
	}
	return n;
}

int gw_cli_repo_known(const char *cmd, gw_cli *cli, const gw_sync_report *report, const char *repo)
{
	uint64_t last = 0;
	if (gw_sync_report_has_repo(report, repo))
		return 0;
	if (gw_index_last_lsn(cli->index, repo, &last) < 0)
		return gw_cli_fail(cmd);
	if (last)
		return 0;
	fprintf(stderr, "gitwal %s: repository %s is not in the archive: the store %s holds no key of it\n", cmd, repo,
		cli->store ? gw_store_url(cli->store) : cli->store_url);
	return 1;
}

int gw_cli_open_archive(const char *cmd, gw_cli *cli, const char *repo, int no_sync, gw_sync_report *report)
{
	if (repo && gw_repo_path_check(repo) < 0)
		return gw_cli_usage_error(cmd, "option --repo: %s", gw_error_message());
	if (gw_cli_resolve(cli, 0) < 0 || (!no_sync && gw_cli_open_store(cli) < 0) || gw_cli_open_index(cli) < 0 ||
	    (!no_sync && gw_index_sync_report(cli->index, cli->store, repo, 0, report) < 0))
		return gw_cli_fail(cmd);
	return repo ? gw_cli_repo_known(cmd, cli, report, repo) : 0;
}

static const gw_opt common_options[] = {
	{.type = GW_OPT_COPY, .name = "root", .arg = "DIR", .offset = offsetof(gw_cli, root), .env = "GITWAL_ROOT",
	 .config = "gitwal.root",
	 .help = "the directory holding the bare repositories\n"
		 "[GITWAL_ROOT, gitwal.root]"},
	{.type = GW_OPT_COPY, .name = "store", .arg = "URL", .offset = offsetof(gw_cli, store_url), .env = "GITWAL_STORE",
	 .config = "gitwal.store",
	 .help = "where backups go: file:///path (default: file://$STATE/store)\n"
		 "or s3://BUCKET/PREFIX?PARAM=VALUE&... [GITWAL_STORE, gitwal.store]\n"
		 "S3 parameters: endpoint=URL (default $AWS_ENDPOINT_URL_S3, else\n"
		 "https://s3.REGION.amazonaws.com), region=R ($AWS_REGION, else us-east-1),\n"
		 "path_style=true|false (false), lock=compliance|governance with\n"
		 "retain=DURATION (30d, 12h, 90s: Object Lock on every object; the bucket\n"
		 "must have it), ca_file=PATH (extra CAs; TLS is always verified),\n"
		 "retries=N (5), upload_max_age=24h, time limits connect_timeout=5s,\n"
		 "stall_timeout=5s, first_byte_timeout=10s, deadline=60s, parallel=2\n"
		 "(parts or ranges of one object moved at once) (README, S3 stores).\n"
		 "S3 credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
		 "AWS_SESSION_TOKEN, else AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials\n"
		 "(mode 0600; profile $AWS_PROFILE or default); never in the URL."},
	{.type = GW_OPT_COPY, .name = "index", .arg = "FILE", .offset = offsetof(gw_cli, index_path),
	 .env = "GITWAL_INDEX", .config = "gitwal.index",
	 .help = "the local SQLite index, a cache of the store (default: $STATE/index.db)\n"
		 "[GITWAL_INDEX, gitwal.index]"},
	/* GITWAL_CONFIG= (empty) names a file too: one that cannot be read. */
	{.type = GW_OPT_COPY, .name = "config", .arg = "FILE", .offset = offsetof(gw_cli, config_path),
	 .env = "GITWAL_CONFIG", .flags = GW_OPT_ENV_EMPTY,
	 .help = "a git-config file with a [gitwal] section\n"
		 "[GITWAL_CONFIG; default: $XDG_CONFIG_HOME/gitwal/config if it exists]"},
	{.type = GW_OPT_HELP, .name = "help", .short_name = 'h', .flags = GW_OPT_MAN_ONLY,
	 .help = "print the command's help on standard output and exit 0; does no other work"},
	/* Read from the config file whether or not the command offers --jobs (GW_CLI_JOBS). */
	{.type = GW_OPT_INT, .name = "jobs", .offset = offsetof(gw_cli, jobs), .min = 1, .max = 256,
	 .config = "gitwal.jobs", .flags = GW_OPT_SETTING},
	GW_OPT_TEXT_("  $STATE is $GITWAL_STATE_DIR, else $XDG_STATE_HOME/gitwal, else ~/.local/state/gitwal."),
	GW_OPT_TEXT_("  Precedence: command line, then environment, then config file, then defaults."),
	GW_OPT_END_,
};

const gw_cli_spec gw_cli_common = {
	.head = "Common options (also from the environment or the config file):\n",
	.options = common_options,
	.column = 18,
};

char *gw_cli_state_dir(void)
{
	const char *s = getenv("GITWAL_STATE_DIR"), *home;
	char buf[PATH_MAX];
	if (s && *s)
		return strdup(s);
	if ((s = getenv("XDG_STATE_HOME")) && *s) {
		snprintf(buf, sizeof(buf), "%s/gitwal", s);
		return strdup(buf);
	}
	home = getenv("HOME");
	snprintf(buf, sizeof(buf), "%s/.local/state/gitwal", home && *home ? home : "/tmp");
	return strdup(buf);
}

static int set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = strdup(value);
	return *slot ? 1 : gw_error_set(GW_ERROR, "out of memory");
}

typedef int (*resolve_fn)(gw_cli *cli, const gw_opt *o, void *payload);

/*
 * fn for each option of the command's and the common table that names a
 * variable or key and is still unset (a name in both is resolved once: the
 * second finds it set).
 */
static int each_unset(gw_cli *cli, resolve_fn fn, void *payload)
{
	const gw_opt *tables[2] = {cli->spec ? cli->spec->options : NULL, gw_cli_common.options}, *o;
	size_t t;
	int rc;
	for (t = 0; t < 2; t++)
		for (o = tables[t]; o && o->type != GW_OPT_END; o++)
			if ((o->env || o->config) && !gw_opt_given(o, cli) && (rc = fn(cli, o, payload)) < 0)
				return rc;
	return 0;
}

static int from_environment(gw_cli *cli, const gw_opt *o, void *payload)
{
	const char *value = o->env ? getenv(o->env) : NULL;
	(void)payload;
	if (!value || (!*value && !(o->flags & GW_OPT_ENV_EMPTY)))
		return 0;
	if (gw_opt_set(o, cli, value) < 0)
		return gw_error_prefix("environment variable %s", o->env);
	gw_opt_mark_given(o, cli); /* GITWAL_X=0 stays 0 whatever the config file says */
	return 0;
}

typedef struct {
	git_config *cfg;
	const char *path;
} config_file;

static int from_config(gw_cli *cli, const gw_opt *o, void *payload)
{
	config_file *f = payload;
	git_config_entry *e = NULL;
	char why[512];
	int rc;
	if (!o->config || git_config_get_entry(&e, f->cfg, o->config) < 0 || !e)
		return 0;
	if ((rc = gw_opt_set(o, cli, e->value)) < 0) {
		snprintf(why, sizeof(why), "%s", gw_error_message());
		rc = gw_error_set(rc, "config file %s: %s = %s", f->path, o->config, why);
	} else {
		gw_opt_mark_given(o, cli);
	}
	git_config_entry_free(e);
	return rc;
}

/* The config file (--config, else GITWAL_CONFIG, else the default if it exists), read with libgit2's parser. */
static int read_config(gw_cli *cli)
{
	char fallback[PATH_MAX];
	config_file f = {NULL, cli->config_path};
	int rc;

	if (!f.path) {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
		if (xdg && *xdg)
			snprintf(fallback, sizeof(fallback), "%s/gitwal/config", xdg);
		else
			snprintf(fallback, sizeof(fallback), "%s/.config/gitwal/config", home ? home : "/");
		f.path = fallback;
		if (access(f.path, F_OK) < 0)
			return 0;
	}
	if (access(f.path, R_OK) < 0)
		return gw_error_set_errno(GW_EINVALID, "config file %s cannot be read", f.path);
	if (git_config_open_ondisk(&f.cfg, f.path) < 0) {
		const git_error *ge = git_error_last();
		return gw_error_set(GW_EINVALID, "config file %s: %s", f.path, ge ? ge->message : "cannot parse");
	}
	rc = each_unset(cli, from_config, &f);
	git_config_free(f.cfg);
	return rc;
}

int gw_cli_resolve(gw_cli *cli, int need_root)
{
	char *state = NULL;
	int rc;

	if ((rc = each_unset(cli, from_environment, NULL)) < 0 || (rc = read_config(cli)) < 0)
		return rc;
	if (!cli->store_url || !cli->index_path) {
		char buf[PATH_MAX + 16];
		if (!(state = gw_cli_state_dir()))
			return gw_error_set(GW_ERROR, "out of memory");
		if (!cli->store_url) {
			char *abs = gw_fs_absolute(state);
			snprintf(buf, sizeof(buf), "file://%s/store", abs);
			free(abs);
			set_string(&cli->store_url, buf);
		}
		if (!cli->index_path) {
			if ((rc = gw_fs_mkdir_p(state, 0700)) < 0) {
				free(state);
				return rc;
			}
			snprintf(buf, sizeof(buf), "%s/index.db", state);
			set_string(&cli->index_path, buf);
		}
		free(state);
	}
	if (!cli->jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cli->jobs = n > 0 ? (int)(n > 8 ? 8 : n) : 1;
	}
	if (need_root && !cli->root)
		return gw_error_set(GW_EINVALID,
				    "no root directory: give --root DIR, set GITWAL_ROOT, or set gitwal.root in the config");
	if (cli->root) {
		char *abs = gw_fs_absolute(cli->root);
		size_t n;
		free(cli->root);
		cli->root = abs;
		n = strlen(abs);
		while (n > 1 && abs[n - 1] == '/')
			abs[--n] = '\0';
	}
	return 0;
}

int gw_cli_open_store(gw_cli *cli)
{
	return cli->store ? 0 : gw_store_open_flags(&cli->store, cli->store_url, cli->store_flags);
}

int gw_cli_open_index(gw_cli *cli)
{
	if (cli->index)
		return 0;
	{
		/* Create the index's directory on first use. */
		char dir[PATH_MAX], *slash;
		snprintf(dir, sizeof(dir), "%s", cli->index_path);
		if ((slash = strrchr(dir, '/')) && slash != dir) {
			*slash = '\0';
			if (access(dir, F_OK) < 0 && gw_fs_mkdir_p(dir, 0700) < 0)
				return gw_error_code();
		}
	}
	return gw_index_open(&cli->index, cli->index_path);
}

void gw_cli_dispose(gw_cli *cli)
{
	gw_index_free(cli->index);
	gw_store_free(cli->store);
	free(cli->root);
	free(cli->store_url);
	free(cli->index_path);
	free(cli->config_path);
}

typedef struct {
	size_t n, next;
	pthread_mutex_t lock;
	void (*fn)(size_t, void *);
	void *payload;
} pool;

static void *worker(void *arg)
{
	pool *p = arg;
	for (;;) {
		size_t i;
		pthread_mutex_lock(&p->lock);
		i = p->next++;
		pthread_mutex_unlock(&p->lock);
		if (i >= p->n)
			return NULL;
		p->fn(i, p->payload);
	}
}

void gw_cli_parallel(size_t n, int jobs, void (*fn)(size_t i, void *payload), void *payload)
{
	pool p = {n, 0, PTHREAD_MUTEX_INITIALIZER, fn, payload};
	pthread_t threads[256];
	int i, started = 0;
	if (jobs < 1)
		jobs = 1;
	if ((size_t)jobs > n)
		jobs = (int)(n ? n : 1);
	for (i = 1; i < jobs; i++)
		if (gw_thread_create(&threads[started], worker, &p) == 0)
			started++;
	worker(&p);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
}
