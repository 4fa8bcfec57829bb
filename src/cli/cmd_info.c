/*
 * gitwal info: what the index knows (after bringing it up to date with the
 * store): repositories, their full backups, LSNs, sizes and times.
 */
#include "cli/cli.h"
#include "gitwal/error.h"
#include "gitwal/repo.h"
#include "gitwal/time.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int json;
	json_t *repos;
	json_t *cur_repo;
	json_t *cur_list;
	char *cur_name;
	size_t nrepos, nbackups;
	json_t *file_changes; /* repository -> its segments carrying a change of its files (read before the walk) */
} info_run;

static int print_one(const gw_full_record *r, void *payload)
{
	info_run *run = payload;
	char when[40];
	gw_time_format(r->time_us, when, sizeof(when));
	if (!run->cur_name || strcmp(run->cur_name, r->repository) != 0) {
		free(run->cur_name);
		run->cur_name = strdup(r->repository);
		json_int_t changes = json_integer_value(json_object_get(run->file_changes, r->repository));
		run->nrepos++;
		if (run->json) {
			run->cur_list = json_array();
			run->cur_repo = json_pack("{s:s, s:I, s:o}", "repository", r->repository, "file_changes", changes,
						  "backups", run->cur_list);
			json_array_append_new(run->repos, run->cur_repo);
		} else {
			printf("%s\n", r->repository);
			if (changes)
				printf("  files changed in %lld segments (config, description, info/attributes, "
				       "custom_hooks/)\n", (long long)changes);
		}
	}
	run->nbackups++;
	if (run->json) {
		json_array_append_new(run->cur_list,
				      json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "lsn", (json_int_t)r->lsn, "time",
						when, "time_us", (json_int_t)r->time_us, "objects", (json_int_t)r->objects,
						"refs", (json_int_t)r->refs, "bundle_bytes", (json_int_t)r->bundle_size,
						"idx_bytes", (json_int_t)r->idx_size, "manifest_key", r->manifest_key));
	} else {
		printf("  full lsn=%llu time=%s objects=%llu refs=%llu bytes=%llu\n", (unsigned long long)r->lsn, when,
		       (unsigned long long)r->objects, (unsigned long long)r->refs,
		       (unsigned long long)(r->bundle_size + r->idx_size + r->manifest_size));
	}
	return 0;
}

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	int json, no_sync;
	const char *repo;
} info_opts;

static const gw_opt options[] = {
	GW_OPT_FLAG_("json", info_opts, json,
		     "one JSON document: {\"store\": URL, \"repositories\": [{\"repository\":\n"
		     "REL, \"file_changes\", \"backups\": [{\"lsn\", \"time\", \"time_us\", \"objects\", \"refs\",\n"
		     "\"bundle_bytes\", \"idx_bytes\", \"manifest_key\"}]}]}"),
	GW_OPT_STRING_("repo", "REL", info_opts, repo, "only this repository"),
	GW_OPT_FLAG_("no-sync", info_opts, no_sync, "list what the index holds, without reading the store"),
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_info_spec = {
	.name = "info",
	.head = "usage: gitwal info [--json] [--repo REL] [--no-sync] [--store URL] [--index FILE]\n"
		"\n"
		"List repositories and their full backups: LSN, time (UTC), objects, refs and\n"
		"sizes, and how many segments changed the repository's own files (config,\n"
		"description, info/attributes, custom_hooks/). The index is first brought up to date with the store (new backups\n"
		"written by other machines appear) unless --no-sync is given.\n"
		"A key that cannot be read or is damaged, and a repository whose keys hold no\n"
		"full backup (its manifest is missing), are reported on stderr, one line each\n"
		"(repository, key, reason), after everything else is listed; the exit status\n"
		"is then 1, as it is for a --repo the archive does not know.\n"
		"\n",
	.options = options,
	.column = 18,
};

int gw_cmd_info(int argc, char **argv)
{
	info_opts o = {0};
	gw_cli *cli = &o.cli;
	info_run run = {0};
	gw_sync_report report = {0};
	size_t i, bad = 0;
	int rc, operands;

	if ((rc = gw_cli_parse(&gw_cmd_info_spec, argc, argv, &o, &operands)) != GW_CLI_GO)
		goto out;
	run.json = o.json;
	if ((rc = gw_cli_open_archive("info", cli, o.repo, o.no_sync, &report)) != 0)
		goto out;
	run.repos = json_array();
	run.file_changes = json_object();
	{
		/* Counted first: the walk below holds the index. */
		char **list = NULL;
		size_t nlist = 0;
		uint64_t n;
		if (gw_index_repos(cli->index, &list, &nlist) < 0) {
			rc = gw_cli_fail("info");
			goto out;
		}
		for (i = 0; i < nlist && rc == 0; i++) {
			if (o.repo && strcmp(o.repo, list[i]) != 0)
				continue;
			if (gw_index_files_count(cli->index, list[i], &n) < 0)
				rc = gw_cli_fail("info");
			else
				json_object_set_new(run.file_changes, list[i], json_integer((json_int_t)n));
		}
		gw_repo_list_free(list, nlist);
		if (rc)
			goto out;
	}
	if (gw_index_full_foreach(cli->index, o.repo, print_one, &run) < 0) {
		rc = gw_cli_fail("info");
		goto out;
	}
	if (run.json) {
		json_t *doc = json_pack("{s:s, s:s, s:O}", "store", cli->store_url, "index", cli->index_path,
					"repositories", run.repos);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
	} else {
		printf("%zu repositories, %zu full backups (store %s)\n", run.nrepos, run.nbackups, cli->store_url);
	}
	/* Listed last, so that one damaged repository never hides the others. */
	bad = gw_cli_report_problems("info", &report, NULL, NULL);
	for (i = 0; i < report.nrepos; i++) {
		gw_full_record first;
		int found;
		if (gw_sync_report_find(&report, report.repos[i], 0))
			continue; /* its damaged keys were just named */
		if ((found = gw_index_full_find_first(cli->index, report.repos[i], &first)) == 0) {
			gw_full_record_dispose(&first);
		} else if (found == GW_ENOTFOUND) {
			fprintf(stderr, "gitwal info: damaged %s: the store holds keys of it but no full backup (no manifest)\n",
				report.repos[i]);
			bad++;
		} else {
			rc = gw_cli_fail("info");
			goto out;
		}
	}
	if (bad)
		rc = 1;
out:
	gw_sync_report_dispose(&report);
	json_decref(run.repos);
	json_decref(run.file_changes);
	free(run.cur_name);
	gw_cli_dispose(cli);
	return rc;
}
