/*
 * gitwal audit: prove the archive is whole and restorable (gw_audit_run),
 * print one line per problem (or one JSON document), and keep the resume
 * cursor of sampled or time-limited audits in $STATE/audit.state.
 *
 * Exit status: 0 clean, 1 problems found, 2 the audit could not run.
 */
#include "cli/cli.h"
#include "cli/progress.h"
#include "gitwal/audit.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"
#include "gitwal/time.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_MAGIC "gitwal-audit-state 1"

static int run_failed(const char *what)
{
	fprintf(stderr, "gitwal audit: %s%s%s\n", what ? what : "", what ? ": " : "", gw_error_message());
	return 2;
}

/* The cursor the last sampled or time-limited run left for this store, or NULL. */
static char *state_read(const char *path, const char *store_url)
{
	char line[4200], *cursor = NULL;
	int magic = 0, store_ok = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, STATE_MAGIC))
			magic = 1;
		else if (!strncmp(line, "store ", 6))
			store_ok = !strcmp(line + 6, store_url);
		else if (!strncmp(line, "resume_after ", 13) && !cursor && gw_store_key_check(line + 13) == 0)
			cursor = strdup(line + 13);
	}
	fclose(f);
	gw_error_clear();
	if (!magic || !store_ok) {
		free(cursor);
		return NULL;
	}
	return cursor;
}

/* Replace the state file atomically: a crash leaves the old cursor or the new one. */
static int state_write(const char *dir, const char *path, const char *store_url, const char *cursor)
{
	char tmp[4200];
	FILE *f;
	int rc;
	if ((rc = gw_fs_mkdir_p(dir, 0700)) < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (!(f = fopen(tmp, "w")))
		return gw_error_set_errno(GW_EIO, "cannot write %s", tmp);
	fprintf(f, "%s\nstore %s\n", STATE_MAGIC, store_url);
	if (cursor)
		fprintf(f, "resume_after %s\n", cursor);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		unlink(tmp);
		return gw_error_set_errno(GW_EIO, "cannot write %s", tmp);
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return gw_error_set_errno(GW_EIO, "cannot rename %s to %s", tmp, path);
	}
	return 0;
}

static void print_quoted(FILE *out, const char *s)
{
	putc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\x%02x", (unsigned char)*s);
		else
			putc(*s, out);
	}
	putc('"', out);
}

static void print_text(const gw_audit_report *r, const gw_audit_opts *o, const char *url)
{
	const gw_audit_counts *c = &r->counts;
	size_t i;
	size_t warnings = gw_audit_report_warnings(r), problems = r->nproblems - warnings;
	for (i = 0; i < r->nproblems; i++) {
		const gw_audit_problem *p = &r->problems[i];
		printf("%s repo=%s lsn=", gw_audit_kind_is_warning(p->kind) ? "warning" : "problem",
		       p->repository ? p->repository : "-");
		if (p->lsn)
			printf("%llu", (unsigned long long)p->lsn);
		else
			putchar('-');
		printf(" key=%s kind=%s detail=", p->key ? p->key : "-", gw_audit_kind_name(p->kind));
		print_quoted(stdout, p->detail);
		putchar('\n');
	}
	printf("audit of %s: %llu repositories, %llu keys, %llu full backups, %llu segments\n", url,
	       (unsigned long long)c->repositories, (unsigned long long)c->keys, (unsigned long long)c->full_backups,
	       (unsigned long long)c->segments);
	printf("checked %llu of %llu records (%llu keys stat'd)", (unsigned long long)c->records_checked,
	       (unsigned long long)c->records_total, (unsigned long long)c->keys_stat);
	if (o->read_data)
		printf(", %.1f MB re-read (%.0f MB/s)", (double)c->bytes_read / 1e6,
		       r->seconds > 0 ? (double)c->bytes_read / 1e6 / r->seconds : 0.0);
	printf(" in %.2f s\n", r->seconds);
	if (o->deep)
		printf("deep: %llu repositories restored and checked, %llu lagging the live root%s\n",
		       (unsigned long long)c->restored, (unsigned long long)c->lagging,
		       o->live_root ? "" : " (no --root given: not compared)");
	if (r->stopped_early)
		printf("stopped early (--max-duration %g s): the next run continues after %s\n", o->max_seconds,
		       r->resume_after ? r->resume_after : "the start");
	else if (o->sample_percent > 0 && c->records_checked < c->records_total)
		printf("sample of %g%%: the next run continues after %s\n", o->sample_percent,
		       r->resume_after ? r->resume_after : "the start");
	if (problems)
		printf("%zu problem%s found\n", problems, problems == 1 ? "" : "s");
	else
		printf("clean: no problems found\n");
	if (c->expire_records)
		printf("%llu expire record%s: the keys they cover were removed by policy, not lost\n",
		       (unsigned long long)c->expire_records, c->expire_records == 1 ? "" : "s");
	if (warnings)
		printf("%zu warning%s: leftovers of writers that died, or an expire to resume, not damage to the archive\n",
		       warnings, warnings == 1 ? "" : "s");
}

static void print_json(const gw_audit_report *r, const gw_audit_opts *o, const char *url)
{
	const gw_audit_counts *c = &r->counts;
	json_t *problems = json_array(), *warnings = json_array(), *doc;
	size_t i;
	for (i = 0; i < r->nproblems; i++) {
		const gw_audit_problem *p = &r->problems[i];
		json_array_append_new(gw_audit_kind_is_warning(p->kind) ? warnings : problems,
				      json_pack("{s:o, s:o, s:o, s:s, s:s}", "repository",
						p->repository ? json_string(p->repository) : json_null(), "lsn",
						p->lsn ? json_integer((json_int_t)p->lsn) : json_null(), "key",
						p->key ? json_string(p->key) : json_null(), "kind",
						gw_audit_kind_name(p->kind), "detail", p->detail));
	}
	doc = json_pack("{s:i, s:b, s:s, s:b, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, "
			"s:b, s:o, s:f}",
			"version", 1, "clean", r->nproblems == gw_audit_report_warnings(r), "store", url, "read_data", o->read_data, "deep",
			o->deep, "checked", "repositories", (json_int_t)c->repositories, "keys", (json_int_t)c->keys,
			"full_backups", (json_int_t)c->full_backups, "segments", (json_int_t)c->segments,
			"records_total", (json_int_t)c->records_total, "records_checked",
			(json_int_t)c->records_checked, "keys_stat", (json_int_t)c->keys_stat, "bytes_read",
			(json_int_t)c->bytes_read, "restored", (json_int_t)c->restored, "lagging",
			(json_int_t)c->lagging, "expire_records", (json_int_t)c->expire_records, "problems", problems, "warnings", warnings, "stopped_early", r->stopped_early,
			"resume_after", r->resume_after ? json_string(r->resume_after) : json_null(), "seconds",
			r->seconds);
	json_dumpf(doc, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(doc);
}

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	gw_audit_opts ao;
	const char **repos; /* --repo, room for every argument */
	int json, progress, root_given;
} audit_opts;

static int take_repo(void *opts, const char *value)
{
	audit_opts *o = opts;
	if (gw_repo_path_check(value) < 0)
		return GW_EINVALID;
	o->repos[o->ao.nrepos++] = value;
	return 0;
}

static int take_since(void *opts, const char *value)
{
	return gw_time_parse(value, &((audit_opts *)opts)->ao.since_us) < 0 ? GW_EINVALID : 0;
}

/*
 * Only a root named on the command line is compared with: the root from the
 * environment or the config is where the archiver runs, which an audit run
 * elsewhere may not see, and a lag is a finding, not a default.
 */
static int take_root(void *opts, const char *value)
{
	audit_opts *o = opts;
	char *copy = strdup(value);
	if (!copy)
		return gw_error_set(GW_ERROR, "out of memory");
	free(o->cli.root);
	o->cli.root = copy;
	o->root_given = 1;
	return 0;
}

static const gw_opt options[] = {
	GW_OPT_FLAG_("read-data", audit_opts, ao.read_data,
		     "also re-read every byte: SHA-256 of every part and segment,\n"
		     "bundle header against the manifest, pack header, object count\n"
		     "and SHA-1 trailer, pack index (its checksum, object count, pack\n"
		     "checksum and offsets)"),
	GW_OPT_FLAG_("deep", audit_opts, ao.deep,
		     "also restore each repository's latest state (latest full backup\n"
		     "and the segments after it) into a scratch directory and run\n"
		     "'git fsck --connectivity-only' on it"),
	GW_OPT_CUSTOM_("root", "DIR", take_root,
		       "with --deep, given on the command line: compare the restored\n"
		       "refs and HEAD with the live repositories under DIR and report\n"
		       "every repository whose archive lags (kind lag; one gitwal\n"
		       "refuses to archive, such as reftable, with the reason)"),
	GW_OPT_STRING_("scratch", "DIR", audit_opts, ao.scratch_dir, "where --deep restores (default: $TMPDIR or /tmp)"),
	GW_OPT_CUSTOM_("repo", "REL", take_repo, "only this repository (repeatable)"),
	GW_OPT_CUSTOM_("since", "TIME", take_since,
		       "only records after TIME (RFC 3339, or @UNIX-SECONDS; checked\n"
		       "as restore --until's TIME is) by the index's times; records the\n"
		       "index lacks are always checked"),
	{.type = GW_OPT_NUMBER, .name = "sample", .arg = "P", .offset = offsetof(audit_opts, ao.sample_percent),
	 .min = 0, .max = 100, .flags = GW_OPT_ABOVE_MIN,
	 .help = "check P percent of the records (0 < P <= 100), continuing after\n"
		 "the record the last sampled or time-limited run stopped at\n"
		 "(kept in $STATE/audit.state): 100/P runs cover the archive"},
	{.type = GW_OPT_NUMBER, .name = "max-duration", .arg = "SECONDS", .offset = offsetof(audit_opts, ao.max_seconds),
	 .min = 0, .max = 1e9, .flags = GW_OPT_ABOVE_MIN,
	 .help = "stop checking records after SECONDS; the next run continues\n"
		 "where this one stopped (\"stopped_early\")"},
	GW_CLI_JOBS(0, "records checked at once (default: cores, at most 8)"),
	GW_OPT_FLAG_("json", audit_opts, json, "one JSON document (below) instead of text"),
	GW_PROGRESS_OPTIONS(audit_opts, progress,
			    "\n(the audit counts the records it checks, then with --deep the\n"
			    "repositories it restores; before that, it lists the store)"),
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_audit_spec = {
	.name = "audit",
	.head = "usage: gitwal audit [--read-data] [--deep [--root DIR] [--scratch DIR]] [--repo REL]...\n"
		"                    [--since TIME] [--sample PERCENT] [--max-duration SECONDS]\n"
		"                    [--jobs N] [--json] [--progress | --quiet]\n"
		"                    [--store URL] [--index FILE]\n"
		"\n"
		"Prove that the archive is whole and restorable, from the store itself. The\n"
		"local index is read as it is (never synced first) and compared with the store.\n"
		"\n"
		"Always: every stored key under repos/ is listed and matched with the index;\n"
		"every manifest and every segment's header and trailer is read; each\n"
		"repository's chain of records is walked (no missing LSN, every segment links\n"
		"to the digest of the record before it and builds on the latest full backup\n"
		"before it, times never go backwards); every full backup has all its parts\n"
		"with the sizes its manifest records; every key is write-once (one version,\n"
		"Object Lock retention on a locking S3 store, read-only files on a file store).\n"
		"\n",
	.options = options,
	.column = 18,
	.tail = "\n"
		"Listing checks (unexpected keys, parts without manifest, index against store)\n"
		"and chain checks cover every record every time; --since, --sample and\n"
		"--max-duration limit the records read (metadata, stat, data). Records not read\n"
		"in a run take part in chain checks with what the index says about them.\n"
		"\n"
		"Also every name under repos/ that is not a key: leftovers of writers that died\n"
		"(a file store's temporary files, an S3 store's incomplete multipart uploads)\n"
		"are warnings, and a FIFO, symlink, directory or other non-regular file where a\n"
		"key could be (file stores) is a problem.\n"
		"\n"
		"Output: one line per problem or warning,\n"
		"  problem repo=REL lsn=N key=KEY kind=KIND detail=\"...\"\n"
		"  warning repo=REL lsn=N key=KEY kind=leftover detail=\"...\"\n"
		"('-' for a field that does not apply), then a summary. Warnings do not make\n"
		"the archive unclean: the next backup or archive writing there removes the\n"
		"leftover (at once when its writer is known to be gone; after 24 hours without\n"
		"a write for another host's; after upload_max_age for an S3 upload).\n"
		"\n"
		"JSON (--json), schema version 1, stable:\n"
		"  {\"version\": 1, \"clean\": BOOL, \"store\": URL, \"read_data\": BOOL, \"deep\": BOOL,\n"
		"   \"checked\": {\"repositories\", \"keys\", \"full_backups\", \"segments\",\n"
		"               \"records_total\", \"records_checked\", \"keys_stat\", \"bytes_read\",\n"
		"               \"restored\", \"lagging\", \"expire_records\"},  (all integers)\n"
		"   \"problems\": [{\"repository\": REL|null, \"lsn\": N|null, \"key\": KEY|null,\n"
		"                 \"kind\": KIND, \"detail\": TEXT}],\n"
		"   \"warnings\": [...the same fields...],\n"
		"   \"stopped_early\": BOOL, \"resume_after\": KEY|null, \"seconds\": NUMBER}\n"
		"  New fields may be added; existing ones keep their meaning.\n"
		"\n"
		"Problem kinds:\n"
		"  index        the local index is missing or lists nothing (the store is\n"
		"               audited alone)\n"
		"  missing      the index lists the key; the store does not have it\n"
		"  unindexed    a record in the store the index does not list\n"
		"  unexpected   a key gitwal never writes, or an LSN used by two records\n"
		"  no-manifest  a full backup's bundle or idx without its manifest\n"
		"  incomplete   a manifest whose bundle or idx is absent\n"
		"  size         a stored size differs from the manifest's or the index's\n"
		"  corrupt      a manifest or segment header that does not parse, names\n"
		"               another repository, LSN or part, or lengths that do not add up\n"
		"  checksum     content differs from its SHA-256 (manifest, segment trailer,\n"
		"               or the index's record of a manifest or trailer)\n"
		"  pack         bundle header, pack or pack index structure is wrong\n"
		"  gap          LSNs in neither the store nor the index\n"
		"  link         a segment's prev_sha256 is not the previous record's digest\n"
		"  base         a segment's base_lsn is not the latest full backup before it\n"
		"  time         record times go backwards\n"
		"  versions     a key was written more than once (versioned stores)\n"
		"  retention    an object without Object Lock retention (locking stores)\n"
		"  writable     a key the store should keep write-once and does not: a file\n"
		"               with a write bit, or an object locked for less than retain=\n"
		"  unreadable   a listed key could not be read\n"
		"  restore      --deep: the latest state cannot be restored\n"
		"  fsck         --deep: the restored state is not connected\n"
		"  lag          --deep --root: the archive's latest state differs from the live\n"
		"               repository (refs that differ are named)\n"
		"  not-a-file   a FIFO, symlink, directory, socket or device where a key could\n"
		"               be (file stores): nothing reads it and no key can be written there\n"
		"Warning kinds:\n"
		"  leftover     a temporary file or incomplete upload of a writer that is not\n"
		"               known to be running (its owner, size and age are named)\n"
		"  unenforced   once per run: the store does not enforce write-once (an S3\n"
		"               bucket without Object Lock)\n"		"  expire-resume keys an expire record covers are still in the store (the\n"
		"               expire was interrupted, or they are under Object Lock retention):\n"
		"               the next 'gitwal expire' removes them. What an expire record\n"
		"               covers is expired by policy: never missing, never a gap\n"
		"\n"
		"Exit status: 0 clean (with or without warnings), 1 problems found, 2 the audit\n"
		"could not run (bad options, store unreachable, index unreadable).\n",
};

int gw_cmd_audit(int argc, char **argv)
{
	audit_opts o;
	gw_cli *cli = &o.cli;
	gw_audit_report report;
	gw_progress_counters counters = {0};
	gw_progress *shown;
	char *state_dir = NULL, *state_path = NULL, *cursor = NULL;
	int rc = 0, have_report = 0, resumable, operands;

	memset(&o, 0, sizeof(o));
	if (!(o.repos = calloc((size_t)argc + 1, sizeof(char *))))
		return gw_error_set(GW_ERROR, "out of memory"), run_failed(NULL);
	if ((rc = gw_cli_parse(&gw_cmd_audit_spec, argc, argv, &o, &operands)) != GW_CLI_GO)
		goto out;
	rc = 0;
	if (o.root_given && !o.ao.deep) {
		rc = gw_cli_usage_error("audit", "option --root compares with the live repositories: it needs --deep");
		goto out;
	}
	if (gw_cli_resolve(cli, 0) < 0) {
		rc = run_failed(NULL);
		goto out;
	}
	if (o.root_given)
		o.ao.live_root = cli->root;
	if (gw_cli_open_store(cli) < 0) {
		rc = run_failed(NULL);
		goto out;
	}
	o.ao.index_path = cli->index_path;
	if (access(cli->index_path, F_OK) < 0)
		o.ao.index_state = GW_AUDIT_INDEX_ABSENT; /* not created: an audit changes nothing */
	else if (gw_cli_open_index(cli) < 0) {
		rc = run_failed("the local index");
		goto out;
	}
	o.ao.repos = o.repos;
	o.ao.jobs = cli->jobs;
	if (!o.ao.scratch_dir)
		o.ao.scratch_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	resumable = o.ao.sample_percent > 0 || o.ao.max_seconds > 0;
	if (resumable) {
		if (!(state_dir = gw_cli_state_dir()) || !(state_path = gw_fs_join(state_dir, "audit.state"))) {
			rc = (gw_error_set(GW_ERROR, "out of memory"), run_failed(NULL));
			goto out;
		}
		o.ao.resume_after = cursor = state_read(state_path, gw_store_url(cli->store));
	}
	if (gw_audit_report_init(&report) < 0) {
		rc = run_failed(NULL);
		goto out;
	}
	have_report = 1;
	o.ao.progress = &counters;
	shown = gw_progress_start("audit", (gw_progress_mode)o.progress, cli->store, &counters);
	rc = gw_audit_run(cli->store, cli->index, &o.ao, &report);
	gw_progress_stop(shown);
	if (rc < 0) {
		rc = run_failed(NULL);
		goto out;
	}
	if (resumable && state_write(state_dir, state_path, gw_store_url(cli->store), report.resume_after) < 0)
		fprintf(stderr, "gitwal audit: cannot keep the resume point: %s\n", gw_error_message());
	if (o.json)
		print_json(&report, &o.ao, gw_store_url(cli->store));
	else
		print_text(&report, &o.ao, gw_store_url(cli->store));
	rc = report.nproblems > gw_audit_report_warnings(&report) ? 1 : 0;
out:
	if (have_report)
		gw_audit_report_dispose(&report);
	free(o.repos);
	free(state_dir);
	free(state_path);
	free(cursor);
	gw_cli_dispose(cli);
	return rc;
}
