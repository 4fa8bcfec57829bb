/*
 * gitwal log: the archive's history of a repository, record by record: full
 * backups and the ref updates of every segment, with their times. For
 * operators ("what happened to main at 14:02?") and for tests.
 */
#include "cli/cli.h"
#include "gitwal/error.h"
#include "gitwal/files.h"
#include "gitwal/manifest.h"
#include "gitwal/repo.h"
#include "gitwal/segment.h"
#include "gitwal/time.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	gw_cli *cli;
	int json;
	json_t *records;
	size_t damaged; /* records that could not be read back: each named on stderr */
	gw_files prev;      /* the repository's files as of the last record read that carries them ... */
	uint64_t prev_base; /* ... in this generation (0: none read yet) */
	json_t *manifests;  /* "LSN" -> the key of its full backup's manifest (read before the walks hold the index) */
} log_run;

static int note_manifest(const gw_full_record *r, void *payload)
{
	log_run *run = payload;
	char lsn[24];
	snprintf(lsn, sizeof(lsn), "%llu", (unsigned long long)r->lsn);
	return json_object_set_new(run->manifests, lsn, json_string(r->manifest_key)) < 0
		       ? gw_error_set(GW_ERROR, "out of memory")
		       : 0;
}

/*
 * The files of the full backup at lsn (its manifest read from the store),
 * into run->prev; an empty set, and an error, when the archive lacks it.
 */
static int load_full_files(log_run *run, uint64_t lsn)
{
	gw_manifest m;
	char *text = NULL, key[24];
	const char *mkey;
	size_t len;
	int rc;
	gw_files_dispose(&run->prev);
	run->prev_base = lsn; /* tried once per generation */
	snprintf(key, sizeof(key), "%llu", (unsigned long long)lsn);
	if (!(mkey = json_string_value(json_object_get(run->manifests, key))))
		return gw_error_set(GW_ENOTFOUND, "no manifest: its files are unknown, each is listed as added");
	if ((rc = gw_store_get(run->cli->store, mkey, GW_MANIFEST_MAX_SIZE, &text, &len)) == 0 &&
	    (rc = gw_manifest_parse(&m, text, len, mkey)) == 0) {
		run->prev = m.files;
		memset(&m.files, 0, sizeof(m.files));
		gw_manifest_dispose(&m);
	}
	free(text);
	return rc;
}

static int same_file(const gw_file *a, const gw_file *b)
{
	return a->type == b->type && a->mode == b->mode && a->size == b->size &&
	       (!a->size || memcmp(a->data, b->data, a->size) == 0);
}

/*
 * The paths that differ between the previous set and cur (both sorted by
 * path): "added", "removed" or "changed" (content, type or mode), or
 * "not-archived" with its reason, printed or appended to out.
 */
static void files_diff(const gw_files *old, const gw_files *cur, int json, json_t *out)
{
	size_t i = 0, j = 0;
	while (i < old->n || j < cur->n) {
		int c = i == old->n ? 1 : j == cur->n ? -1 : strcmp(old->items[i].path, cur->items[j].path);
		const char *path = c <= 0 ? old->items[i].path : cur->items[j].path, *what, *skipped;
		if (c == 0 && same_file(&old->items[i], &cur->items[j])) {
			i++, j++;
			continue;
		}
		/* A path found but not kept (DESIGN.md 4.5) is shown as such, with why. */
		skipped = c >= 0 && cur->items[j].type == GW_FILE_SKIPPED ? (const char *)cur->items[j].data : NULL;
		what = c < 0 ? "removed" : skipped ? "not-archived" : c > 0 ? "added" : "changed";
		if (json && skipped)
			json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "path", path, "change", what, "reason", skipped));
		else if (json)
			json_array_append_new(out, json_pack("{s:s, s:s}", "path", path, "change", what));
		else if (skipped)
			printf("  file %s not-archived (%s)\n", path, skipped);
		else
			printf("  file %s %s\n", path, what);
		i += c <= 0;
		j += c >= 0;
	}
}

static int print_full(const gw_full_record *r, void *payload)
{
	log_run *run = payload;
	char when[40];
	gw_time_format(r->time_us, when, sizeof(when));
	if (run->json)
		json_array_append_new(run->records,
				      json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:s}", "lsn", (json_int_t)r->lsn, "kind",
						"full", "time_us", (json_int_t)r->time_us, "time", when, "refs",
						(json_int_t)r->refs, "objects", (json_int_t)r->objects, "key", r->manifest_key));
	else
		printf("%llu full %s refs=%llu objects=%llu\n", (unsigned long long)r->lsn, when,
		       (unsigned long long)r->refs, (unsigned long long)r->objects);
	return 0;
}

static int print_segment(const gw_segment_record *r, void *payload)
{
	log_run *run = payload;
	gw_segment_header h;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	json_t *updates = NULL, *changes = NULL;
	char when[40];
	size_t i;
	int rc;
	if ((rc = gw_segment_read_meta(run->cli->store, r->key, r->size, &h, trailer)) < 0) {
		/* One damaged record is named; the rest of the history is still printed. */
		fprintf(stderr, "gitwal log: damaged %s: key %s: %s\n", r->repository, r->key, gw_error_message());
		run->damaged++;
		return 0;
	}
	gw_time_format(r->time_last_us, when, sizeof(when));
	if (run->json)
		updates = json_array();
	else
		printf("%llu segment %s objects=%llu bytes=%llu\n", (unsigned long long)r->lsn, when,
		       (unsigned long long)r->objects, (unsigned long long)r->size);
	if (h.files) {
		/* Compared with the files before: the generation's full backup's, or an earlier segment's. */
		changes = run->json ? json_array() : NULL;
		if (run->prev_base != r->base_lsn && load_full_files(run, r->base_lsn) < 0) {
			fprintf(stderr, "gitwal log: damaged %s: the full backup at LSN %llu: %s\n", r->repository,
				(unsigned long long)r->base_lsn, gw_error_message());
			run->damaged++;
		}
		files_diff(&run->prev, h.files, run->json, changes);
		gw_files_dispose(&run->prev);
		run->prev = *h.files;
		memset(h.files, 0, sizeof(*h.files));
		run->prev_base = r->base_lsn;
	}
	for (i = 0; i < h.nupdates; i++) {
		const gw_update *u = &h.updates[i];
		if (run->json) {
			json_array_append_new(updates, gw_update_json(u));
		} else if (u->kind == GW_UPDATE_REF) {
			printf("  %s %s -> %s\n", u->ref, *u->old_oid ? u->old_oid : "(none)",
			       *u->new_oid ? u->new_oid : "(deleted)");
		} else if (u->kind == GW_UPDATE_SYMREF) {
			printf("  %s: ref: %s -> ref: %s\n", u->ref, *u->old_target ? u->old_target : "(none)",
			       *u->new_target ? u->new_target : "(deleted)");
		} else {
			printf("  repository %s\n", gw_update_kind_name(u->kind));
		}
	}
	if (run->json)
		json_array_append_new(run->records,
				      json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:s, s:o}", "lsn", (json_int_t)r->lsn,
						"kind", "segment", "time_us", (json_int_t)r->time_last_us, "time", when,
						"objects", (json_int_t)r->objects, "bytes", (json_int_t)r->size, "key",
						r->key, "updates", updates));
	if (run->json && changes)
		json_object_set_new(json_array_get(run->records, json_array_size(run->records) - 1), "files", changes);
	gw_segment_header_dispose(&h);
	return 0;
}

static int lsn_cmp(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "lsn"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "lsn"));
	return x < y ? -1 : x > y;
}

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	const char *repo;
	int json;
} log_opts;

static const gw_opt options[] = {
	GW_OPT_FLAG_("json", log_opts, json,
		     "one JSON document: {\"repository\", \"records\": [{\"lsn\", \"kind\":\n"
		     "\"full\"|\"segment\", \"time_us\", \"time\", ...}]}; a segment record has\n"
		     "\"updates\": [{\"kind\", \"time_us\", \"ref\", \"old\", \"new\",\n"
		     "\"old_target\", \"new_target\"}], and when it changed the repository's\n"
		     "files, \"files\": [{\"path\", \"change\": \"added\"|\"removed\"|\"changed\"|\n"
		     "\"not-archived\"}] (not-archived with its \"reason\")"),
	/* --help's usage line says it; the man page lists it. */
	{.type = GW_OPT_STRING, .name = "repo", .arg = "REL", .offset = offsetof(log_opts, repo),
	 .flags = GW_OPT_MAN_ONLY, .help = "the repository (required)"},
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_log_spec = {
	.name = "log",
	.head = "usage: gitwal log --repo REL [--json] [--store URL] [--index FILE]\n"
		"\n"
		"Print every record archived for a repository, in LSN order: full backups\n"
		"(LSN, time, refs) and log segments (LSN, time, and each ref update: ref,\n"
		"old value, new value; HEAD retargets; repository created or deleted; each\n"
		"of the repository's own files (config, description, info/attributes,\n"
		"custom_hooks/) added, removed or changed, or found but not archived, with\n"
		"why: a fifo, a file above 1 MiB...).\n"
		"A record that cannot be read back is named on stderr (repository, key,\n"
		"reason) and the rest is printed; the exit status is then 1, as it is for a\n"
		"repository the archive does not know.\n"
		"\n",
	.options = options,
	.column = 18,
	.flags = GW_CLI_OPERANDS, /* none, but their error is "give exactly one --repo REL" */
};

int gw_cmd_log(int argc, char **argv)
{
	log_opts o = {0};
	gw_cli *cli = &o.cli;
	log_run run = {0};
	gw_sync_report report = {0};
	const char *repo;
	int rc, operands;

	if ((rc = gw_cli_parse(&gw_cmd_log_spec, argc, argv, &o, &operands)) != GW_CLI_GO)
		goto out;
	repo = o.repo;
	run.json = o.json;
	if (!repo || operands < argc) {
		rc = gw_cli_usage_error("log", "give exactly one --repo REL");
		goto out;
	}
	if ((rc = gw_cli_open_archive("log", cli, repo, 0, &report)) != 0)
		goto out;
	run.cli = cli;
	run.records = json_array();
	run.manifests = json_object();
	if (gw_index_full_foreach(cli->index, repo, note_manifest, &run) < 0) {
		rc = gw_cli_fail("log");
		goto out;
	}
	if (run.json) {
		/* Collect both kinds, then order by LSN. */
		json_t **items;
		size_t i, n;
		if (gw_index_full_foreach(cli->index, repo, print_full, &run) < 0 ||
		    gw_index_segment_foreach(cli->index, repo, 1, UINT64_MAX, print_segment, &run) < 0) {
			rc = gw_cli_fail("log");
			goto out;
		}
		n = json_array_size(run.records);
		if (!(items = calloc(n ? n : 1, sizeof(json_t *)))) {
			rc = (gw_error_set(GW_ERROR, "out of memory"), gw_cli_fail("log"));
			goto out;
		}
		for (i = 0; i < n; i++)
			items[i] = json_incref(json_array_get(run.records, i));
		qsort(items, n, sizeof(json_t *), lsn_cmp);
		json_array_clear(run.records);
		for (i = 0; i < n; i++)
			json_array_append_new(run.records, items[i]);
		free(items);
		{
			json_t *doc = json_pack("{s:s, s:O}", "repository", repo, "records", run.records);
			json_dumpf(doc, stdout, JSON_INDENT(1));
			putchar('\n');
			json_decref(doc);
		}
	} else {
		/* Interleave: fulls and segments, by LSN. */
		uint64_t lsn;
		if (gw_index_last_lsn(cli->index, repo, &lsn) < 0) {
			rc = gw_cli_fail("log");
			goto out;
		}
		for (uint64_t l = 1; l <= lsn; l++) {
			gw_full_record fr;
			if (gw_index_full_find(cli->index, repo, l, &fr) == 0) {
				print_full(&fr, &run);
				gw_full_record_dispose(&fr);
			} else if (gw_index_segment_foreach(cli->index, repo, l, l, print_segment, &run) < 0) {
				rc = gw_cli_fail("log");
				goto out;
			}
		}
	}
	/* Keys the sync could not record are not in the history above: name them. */
	if (gw_cli_report_problems("log", &report, NULL, NULL) + run.damaged)
		rc = 1;
out:
	gw_sync_report_dispose(&report);
	gw_files_dispose(&run.prev);
	json_decref(run.manifests);
	json_decref(run.records);
	gw_cli_dispose(cli);
	return rc;
}
