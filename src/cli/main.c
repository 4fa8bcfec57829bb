/*
 * gitwal: continuous, write-once, point-in-time backups of Git repositories.
 * This file only dispatches to the commands.
 */
#include "cli/cli.h"

#include <git2.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

static const char *usage =
	"usage: gitwal COMMAND [OPTIONS]\n"
	"\n"
	"gitwal backs up the bare Git repositories under a root directory into a\n"
	"write-once store, and restores them.\n"
	"\n"
	"Commands:\n"
	"  archive   the always-on archiver: every change to every repository under the\n"
	"            root becomes a write-once log segment within a fraction of a second\n"
	"  backup    take a full backup of repositories (a Git bundle, its pack index\n"
	"            and a manifest, written once and never modified)\n"
	"  restore   rebuild repositories from their latest (or a chosen) full backup\n"
	"  info      list repositories and their backups\n"
	"  log       the archived history of a repository: full backups, ref updates\n"
	"  index     maintain the local index (index rebuild: recreate it from the store)\n"
	"  audit     prove the archive is whole and restorable (exit 1 when it is not)\n"
	"  help      show this text, or 'gitwal help COMMAND'\n"
	"  version   print the version\n"
	"\n"
	"Run 'gitwal COMMAND --help' for a command's options.\n"
	"\n" GW_CLI_COMMON_HELP "\n"
	"Exit status: 0 on success, 1 when something failed (each failure is named on\n"
	"stderr), 2 for a usage error.\n";

static int raise_fd_limit(void)
{
	/* Every pack of a repository stays open during its snapshot. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	static char help_flag[] = "--help";
	static char *help_argv[3];
	int rc;

	if (!cmd || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		if (cmd && !strcmp(cmd, "help") && argc > 2) {
			help_argv[0] = argv[2];
			help_argv[1] = help_flag;
			argc = 2;
			argv = help_argv;
			cmd = argv[0];
			goto dispatch;
		}
		fputs(usage, cmd ? stdout : stderr);
		return cmd ? 0 : 2;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("gitwal %s\n", GITWAL_VERSION_STRING);
		return 0;
	}
	argc--;
	argv++;
dispatch:
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	git_libgit2_init();
	if (!strcmp(cmd, "backup"))
		rc = gw_cmd_backup(argc, argv);
	else if (!strcmp(cmd, "restore"))
		rc = gw_cmd_restore(argc, argv);
	else if (!strcmp(cmd, "info"))
		rc = gw_cmd_info(argc, argv);
	else if (!strcmp(cmd, "archive"))
		rc = gw_cmd_archive(argc, argv);
	else if (!strcmp(cmd, "log"))
		rc = gw_cmd_log(argc, argv);
	else if (!strcmp(cmd, "index"))
		rc = gw_cmd_index(argc, argv);
	else if (!strcmp(cmd, "audit"))
		rc = gw_cmd_audit(argc, argv);
	else {
		fprintf(stderr, "gitwal: '%s' is not a command (see 'gitwal --help')\n", cmd);
		rc = 2;
	}
	git_libgit2_shutdown();
	return rc;
}
