/*
 * Option resolution shared by every command, the small worker pool that
 * backup and restore use to work on several repositories at once, and
 * uniform error output.
 */
#include "cli/cli.h"
#include "util/thread.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"

#include <errno.h>
#include <git2.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gw_cli_fail(const char *cmd, int code)
{
	fprintf(stderr, "gitwal %s: %s\n", cmd, gw_error_message());
	(void)code;
	return 1;
}

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
		return gw_cli_fail(cmd, gw_error_code());
	if (last)
		return 0;
	fprintf(stderr, "gitwal %s: repository %s is not in the archive: the store %s holds no key of it\n", cmd, repo,
		cli->store ? gw_store_url(cli->store) : cli->store_url);
	return 1;
}

int gw_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "gitwal %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'gitwal %s --help')\n", cmd);
	return 2;
}

int gw_cli_parse_jobs(const char *cmd, const char *value, int *jobs)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || *end || end == value || v < 1 || v > 256)
		return gw_cli_usage_error(cmd, "option --jobs: '%s' is not a number from 1 to 256", value);
	*jobs = (int)v;
	return 0;
}

int gw_cli_parse_number(const char *cmd, const char *opt, const char *value, double min, double max,
			int min_exclusive, double *out)
{
	char *end;
	double d;
	errno = 0;
	d = strtod(value, &end);
	if (errno || end == value || *end || !isfinite(d) || d < min || (min_exclusive && d == min) || d > max)
		return gw_cli_usage_error(cmd,
					  min_exclusive ? "option --%s: '%s' is not a number above %g and at most %g"
							: "option --%s: '%s' is not a number from %g to %g",
					  opt, value, min, max);
	*out = d;
	return 0;
}

static int set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = strdup(value);
	return *slot ? 1 : gw_error_set(GW_ERROR, "out of memory");
}

int gw_cli_common_option(gw_cli *cli, int c, const char *value)
{
	switch (c) {
	case 'R':
		return set_string(&cli->root, value) > 0;
	case 'S':
		return set_string(&cli->store_url, value) > 0;
	case 'I':
		return set_string(&cli->index_path, value) > 0;
	case 'C':
		return set_string(&cli->config_path, value) > 0;
	default:
		return 0;
	}
}

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

/* Values from the config file, read with libgit2's config parser. */
static int read_config(gw_cli *cli)
{
	const char *path = cli->config_path ? cli->config_path : getenv("GITWAL_CONFIG");
	char fallback[PATH_MAX];
	git_config *cfg = NULL;
	git_config_entry *e = NULL;
	static const char *keys[] = {"gitwal.root", "gitwal.store", "gitwal.index", "gitwal.jobs"};
	int explicit = path != NULL, rc = 0;
	size_t i;

	if (!path) {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
		if (xdg && *xdg)
			snprintf(fallback, sizeof(fallback), "%s/gitwal/config", xdg);
		else
			snprintf(fallback, sizeof(fallback), "%s/.config/gitwal/config", home ? home : "/");
		path = fallback;
		if (access(path, F_OK) < 0)
			return 0;
	}
	if (access(path, R_OK) < 0)
		return gw_error_set_errno(GW_EINVALID, "config file %s cannot be read", path);
	if (git_config_open_ondisk(&cfg, path) < 0) {
		const git_error *ge = git_error_last();
		return gw_error_set(GW_EINVALID, "config file %s: %s", path, ge ? ge->message : "cannot parse");
	}
	(void)explicit;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && rc >= 0; i++) {
		if (git_config_get_entry(&e, cfg, keys[i]) < 0 || !e)
			continue;
		if (i == 0 && !cli->root)
			rc = set_string(&cli->root, e->value);
		else if (i == 1 && !cli->store_url)
			rc = set_string(&cli->store_url, e->value);
		else if (i == 2 && !cli->index_path)
			rc = set_string(&cli->index_path, e->value);
		else if (i == 3 && !cli->jobs) {
			char *end;
			long v = strtol(e->value, &end, 10);
			if (*end || v < 1 || v > 256)
				rc = gw_error_set(GW_EINVALID, "config file %s: gitwal.jobs = '%s' is not a number from 1 to 256",
						  path, e->value);
			else
				cli->jobs = (int)v;
		}
		git_config_entry_free(e);
		e = NULL;
	}
	git_config_free(cfg);
	return rc < 0 ? rc : 0;
}

int gw_cli_resolve(gw_cli *cli, int need_root)
{
	const char *env;
	char *state = NULL;
	int rc;

	if (!cli->root && (env = getenv("GITWAL_ROOT")) && *env)
		set_string(&cli->root, env);
	if (!cli->store_url && (env = getenv("GITWAL_STORE")) && *env)
		set_string(&cli->store_url, env);
	if (!cli->index_path && (env = getenv("GITWAL_INDEX")) && *env)
		set_string(&cli->index_path, env);
	if ((rc = read_config(cli)) < 0)
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
