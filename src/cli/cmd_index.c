/*
 * gitwal index: maintenance of the local index, which is only a cache of
 * the store. `index rebuild` recreates it from the store alone.
 */
#include "cli/cli.h"
#include "gitwal/error.h"

#include <string.h>

static const gw_opt options[] = {
	GW_OPT_OPERAND_("rebuild", "forget what the index holds and rebuild it from the store\n"
				   "alone (listing plus manifests); use it on a new machine or\n"
				   "after losing the index file. A key that cannot be read or\n"
				   "is damaged is reported (repository, key, reason) and left\n"
				   "out, everything else is indexed, and the exit status is 1"),
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_index_spec = {
	.name = "index",
	.head = "usage: gitwal index rebuild [--store URL] [--index FILE]\n"
		"\n",
	.options = options,
	.column = 18,
	.flags = GW_CLI_OPERANDS,
};

int gw_cmd_index(int argc, char **argv)
{
	gw_cli cli = {0};
	gw_sync_report report = {0};
	int rc, first;

	if ((rc = gw_cli_parse(&gw_cmd_index_spec, argc, argv, &cli, &first)) != GW_CLI_GO)
		goto out;
	rc = 0;
	if (first >= argc || strcmp(argv[first], "rebuild") != 0 || first + 1 != argc) {
		rc = gw_cli_usage_error("index", "expected 'gitwal index rebuild'");
		goto out;
	}
	if (gw_cli_resolve(&cli, 0) < 0 || gw_cli_open_store(&cli) < 0 || gw_cli_open_index(&cli) < 0 ||
	    gw_index_clear(cli.index) < 0 || gw_index_sync_report(cli.index, cli.store, NULL, 0, &report) < 0) {
		rc = gw_cli_fail("index");
		goto out;
	}
	printf("index %s rebuilt from %s: %zu full backups, %zu segments, %zu repositories\n", cli.index_path,
	       cli.store_url, report.fulls, report.segments, report.nrepos);
	if (gw_cli_report_problems("index", &report, NULL, NULL)) {
		fprintf(stderr, "gitwal index: %zu damaged keys left out of the index\n", report.nproblems);
		rc = 1;
	}
out:
	gw_sync_report_dispose(&report);
	gw_cli_dispose(&cli);
	return rc;
}
