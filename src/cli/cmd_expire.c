/*
 * gitwal expire: retention by policy (DESIGN.md 18). Keeps every moment of
 * the window restorable (the newest full backup at or before its start and
 * everything after it, and the N newest full backups with what follows
 * them), writes a create-only expire record before removing anything, and
 * leaves objects under Object Lock retention for a later run.
 */
#include "cli/cli.h"
#include "gitwal/error.h"
#include "gitwal/expire.h"
#include "gitwal/repo.h"
#include "gitwal/time.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	char *keep_within; /* a copy: a config value does not outlive its reading */
	int keep_full;
	const char **repos; /* --repo, room for every argument */
	size_t nrepos;
	int dry_run, json;
} expire_opts;

static int take_repo(void *opts, const char *value)
{
	expire_opts *o = opts;
	if (gw_repo_path_check(value) < 0)
		return GW_EINVALID;
	o->repos[o->nrepos++] = value;
	return 0;
}

static const gw_opt options[] = {
	{.type = GW_OPT_COPY, .name = "keep-within", .arg = "DURATION", .offset = offsetof(expire_opts, keep_within),
	 .config = "gitwal.keepWithin",
	 .help = "the window: every moment of the last DURATION (7d, 12h,\n"
		 "30m, 90s) stays restorable exactly; what only serves\n"
		 "earlier times is removed (required) [gitwal.keepWithin]"},
	{.type = GW_OPT_INT, .name = "keep-full", .arg = "N", .offset = offsetof(expire_opts, keep_full), .min = 0,
	 .max = 1000000, .config = "gitwal.keepFull",
	 .help = "also keep each repository's N newest full backups and\n"
		 "everything after them (default 0) [gitwal.keepFull]"},
	GW_OPT_CUSTOM_("repo", "REL", take_repo, "only this repository (repeatable; default: all)"),
	GW_OPT_FLAG_("dry-run", expire_opts, dry_run, "print what would be removed; write and remove nothing"),
	GW_OPT_FLAG_("json", expire_opts, json, "with --dry-run: the plan as one JSON document"),
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_expire_spec = {
	.name = "expire",
	.head = "usage: gitwal expire --keep-within DURATION [--keep-full N] [--repo REL]...\n"
		"                     [--dry-run [--json]] [--store URL] [--index FILE]\n"
		"\n"
		"Remove what only serves times before the window [now - DURATION, now], by\n"
		"repository: restore --until any time in the window gives exactly what it gave\n"
		"before. Kept: the newest full backup at or before the window's start, every\n"
		"later full backup and segment, and with --keep-full the N newest full backups\n"
		"and all after them. A repository deleted before the window's start is removed\n"
		"whole. Before removing anything, an expire record (repos/REL/LSN.expire,\n"
		"create-only) names the policy, the date and what goes: the audit then reports\n"
		"those keys as expired by policy, never as lost, and restore --until an expired\n"
		"time says which policy expired it and when. Objects under Object Lock\n"
		"retention are never removed: reported as locked until their date, and removed\n"
		"by a later run. An interrupted run (even kill -9) leaves every moment of the\n"
		"window restorable; the next run finishes it.\n"
		"\n",
	.options = options,
	.column = 22,
	.tail = "\n"
		"Prints one line per repository ('expired REL ...', 'would expire REL ...',\n"
		"'locked REL ...' or 'failed REL: reason') and a summary on stderr. The plan\n"
		"comes from the local index (run 'gitwal index rebuild' first on a new machine):\n"
		"an index that lags the store only keeps more. 'gitwal archive' applies the same\n"
		"policy on its own when gitwal.keepWithin is set.\n"
		"Exit status: 0 done (locked objects wait for a later run), 1 a repository\n"
		"failed or the store refused a removal, 2 usage.\n",
	.unexpected = " (name repositories with --repo)",
};

static json_t *time_or_null(int64_t us)
{
	char t[GW_TIME_TEXT_MAX];
	if (!us)
		return json_null();
	gw_time_format(us, t, sizeof(t));
	return json_string(t);
}

static void print_plan_json(const gw_expire_result *res, int64_t now_us, const char *within, int keep_full)
{
	json_t *repos = json_array(), *doc;
	size_t i;
	for (i = 0; i < res->nrepos; i++) {
		const gw_expire_repo_result *r = &res->repos[i];
		int whole = r->plan.action == GW_EXPIRE_WHOLE;
		json_array_append_new(
			repos, json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o}", "repository", r->repository, "action",
					 whole ? "whole" : "prefix", "lsn_from", (json_int_t)r->plan.first_lsn, "lsn_to",
					 (json_int_t)r->plan.last_lsn, "kept_lsn",
					 r->plan.kept_lsn ? json_integer((json_int_t)r->plan.kept_lsn) : json_null(),
					 "restorable_from", whole ? json_null() : time_or_null(r->plan.kept_us), "deleted",
					 whole ? time_or_null(r->plan.deleted_us) : json_null()));
	}
	doc = json_pack("{s:i, s:o, s:s, s:i, s:o, s:f}", "version", 1, "now", time_or_null(now_us), "keep_within",
			within, "keep_full", keep_full, "repositories", repos, "plan_seconds", res->plan_seconds);
	json_dumpf(doc, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(doc);
}

static void print_repo(const gw_expire_repo_result *r, int dry_run)
{
	char kept[GW_TIME_TEXT_MAX], until[GW_TIME_TEXT_MAX];
	if (r->error) {
		printf("failed %s: %s\n", r->repository, r->error);
		fprintf(stderr, "gitwal expire: %s\n", r->error);
		return;
	}
	if (r->plan.action == GW_EXPIRE_WHOLE) {
		gw_time_format(r->plan.deleted_us, kept, sizeof(kept));
		printf("%s %s whole: deleted %s, lsn=%llu..%llu", dry_run ? "would expire" : "expired", r->repository, kept,
		       (unsigned long long)r->plan.first_lsn, (unsigned long long)r->plan.last_lsn);
	} else {
		gw_time_format(r->plan.kept_us, kept, sizeof(kept));
		printf("%s %s lsn=%llu..%llu kept_lsn=%llu restorable_from=%s", dry_run ? "would expire" : "expired",
		       r->repository, (unsigned long long)r->plan.first_lsn, (unsigned long long)r->plan.last_lsn,
		       (unsigned long long)r->plan.kept_lsn, kept);
	}
	if (!dry_run)
		printf(" keys=%llu bytes=%llu record=%s%s", (unsigned long long)r->keys_removed,
		       (unsigned long long)r->bytes_removed, r->record_key ? r->record_key : "-",
		       r->resumed ? " resumed" : "");
	putchar('\n');
	if (r->keys_locked) {
		gw_time_format(r->locked_until * 1000000, until, sizeof(until));
		printf("locked %s keys=%llu until=%s: under Object Lock retention, removed by a later run\n", r->repository,
		       (unsigned long long)r->keys_locked, until);
	}
	if (r->keys_failed)
		fprintf(stderr, "gitwal expire: %s: the store refused to remove %llu keys, the first %s\n", r->repository,
			(unsigned long long)r->keys_failed, r->refused ? r->refused : "(out of memory)");
}

int gw_cmd_expire(int argc, char **argv)
{
	expire_opts o;
	gw_expire_opts eo;
	gw_expire_result res;
	int64_t within_us = 0;
	const char *kill_env;
	char within[32];
	size_t i;
	int rc, first;

	memset(&o, 0, sizeof(o));
	memset(&eo, 0, sizeof(eo));
	memset(&res, 0, sizeof(res));
	if (!(o.repos = calloc((size_t)argc + 1, sizeof(char *))))
		return (gw_error_set(GW_ERROR, "out of memory"), gw_cli_fail("expire"));
	if ((rc = gw_cli_parse(&gw_cmd_expire_spec, argc, argv, &o, &first)) != GW_CLI_GO)
		goto out;
	if (o.json && !o.dry_run) {
		rc = gw_cli_usage_error("expire", "--json goes with --dry-run");
		goto out;
	}
	if (gw_cli_resolve(&o.cli, 0) < 0) {
		rc = gw_cli_fail("expire");
		goto out;
	}
	if (!o.keep_within) {
		rc = gw_cli_usage_error("expire", "no window: give --keep-within DURATION (or set gitwal.keepWithin)");
		goto out;
	}
	if (gw_duration_parse(o.keep_within, &within_us) < 0) {
		rc = gw_cli_usage_error("expire", "option --keep-within (gitwal.keepWithin): %s", gw_error_message());
		goto out;
	}
	if (gw_cli_open_store(&o.cli) < 0 || gw_cli_open_index(&o.cli) < 0) {
		rc = gw_cli_fail("expire");
		goto out;
	}
	eo.keep_within_us = within_us;
	eo.keep_full = (unsigned)o.keep_full;
	eo.repos = o.repos;
	eo.nrepos = o.nrepos;
	eo.dry_run = o.dry_run;
	eo.kill_after = -1;
	/* Tests: "record" stops dead after the first record is written, N after N keys are removed. */
	if ((kill_env = getenv("GITWAL_TEST_EXPIRE_KILL")) && *kill_env)
		eo.kill_after = !strcmp(kill_env, "record") ? -2 : atol(kill_env);
	eo.now_us = gw_time_now_us();
	/* Tests: a fixed "now" (a time as restore --until takes it), so a window does not slide while they check it. */
	if ((kill_env = getenv("GITWAL_TEST_EXPIRE_NOW")) && *kill_env && gw_time_parse(kill_env, &eo.now_us) < 0) {
		rc = gw_cli_fail("expire");
		goto out;
	}
	if (gw_expire_run(o.cli.store, o.cli.index, &eo, &res) < 0) {
		rc = gw_cli_fail("expire");
		goto out;
	}
	gw_duration_format(within_us, within, sizeof(within));
	if (o.json) {
		print_plan_json(&res, eo.now_us, within, o.keep_full);
	} else {
		for (i = 0; i < res.nrepos; i++)
			print_repo(&res.repos[i], o.dry_run);
	}
	fflush(stdout);
	if (res.lock_period_s) {
		char lock[32];
		gw_duration_format(res.lock_period_s * 1000000, lock, sizeof(lock));
		fprintf(stderr,
			"gitwal expire: warning: objects are locked for %s, longer than the window (%s): each is removed "
			"only once its lock has passed, by a later run\n",
			lock, within);
	}
	fprintf(stderr,
		"gitwal expire: %zu repositories%s, %llu keys removed (%llu bytes), %llu locked, %llu records written, "
		"%llu store requests, planned in %.3f s, store %s\n",
		res.nrepos, o.dry_run ? " to expire (dry run)" : "", (unsigned long long)res.keys_removed,
		(unsigned long long)res.bytes_removed, (unsigned long long)res.keys_locked,
		(unsigned long long)res.records, (unsigned long long)res.requests, res.plan_seconds,
		gw_store_url(o.cli.store));
	rc = res.failed || res.keys_failed ? 1 : 0;
out:
	gw_expire_result_dispose(&res);
	free(o.keep_within);
	free(o.repos);
	gw_cli_dispose(&o.cli);
	return rc;
}
