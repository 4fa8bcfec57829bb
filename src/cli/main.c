/*
 * gitwal: continuous, write-once, point-in-time backups of Git repositories.
 * This file only dispatches to the commands, from the table below, which
 * also gives the top-level help its list of them.
 */
#include "cli/cli.h"

#include <git2.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command's name */
	const gw_cli_spec *spec;           /* its help and options (NULL: none) */
	const char *summary;               /* for 'gitwal --help': lines, '\n' between */
} commands[] = {
	{"archive", gw_cmd_archive, &gw_cmd_archive_spec,
	 "the always-on archiver: every change to every repository under the\n"
	 "root becomes a write-once log segment within a fraction of a second"},
	{"backup", gw_cmd_backup, &gw_cmd_backup_spec,
	 "take a full backup of repositories (a Git bundle, its pack index\n"
	 "and a manifest, written once and never modified)"},
	{"restore", gw_cmd_restore, &gw_cmd_restore_spec, "rebuild repositories from their latest (or a chosen) full backup"},
	{"info", gw_cmd_info, &gw_cmd_info_spec, "list repositories and their backups"},
	{"log", gw_cmd_log, &gw_cmd_log_spec, "the archived history of a repository: full backups, ref updates"},
	{"index", gw_cmd_index, &gw_cmd_index_spec, "maintain the local index (index rebuild: recreate it from the store)"},
	{"audit", gw_cmd_audit, &gw_cmd_audit_spec, "prove the archive is whole and restorable (exit 1 when it is not)"},
	{"expire", gw_cmd_expire, &gw_cmd_expire_spec,
	 "remove what only serves times before a window, by policy (every moment\n"
	 "of the window stays restorable; Object Lock is honoured)"},
	{"help", cmd_help, NULL, "show this text, or 'gitwal help COMMAND'"},
	{"version", cmd_version, NULL, "print the version"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	size_t i;
	fputs("usage: gitwal COMMAND [OPTIONS]\n"
	      "\n"
	      "gitwal backs up the bare Git repositories under a root directory into a\n"
	      "write-once store, and restores them.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (i = 0; i < NCOMMANDS; i++)
		gw_cli_help_item(out, commands[i].name, commands[i].summary, 12);
	fputs("\n"
	      "Run 'gitwal COMMAND --help' for a command's options.\n"
	      "\n",
	      out);
	gw_cli_help_block(out, &gw_cli_common);
	fputs("\n"
	      "Exit status: 0 on success, 1 when something failed (each failure is named on\n"
	      "stderr), 2 for a usage error.\n",
	      out);
}

static const struct command *find(const char *name)
{
	size_t i;
	for (i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int not_a_command(const char *name)
{
	fprintf(stderr, "gitwal: '%s' is not a command (see 'gitwal --help')\n", name);
	return 2;
}

/*
 * gitwal help [COMMAND]: the usage, or COMMAND --help. 'gitwal help
 * --man-options COMMAND|common' (not in the help) prints the options of
 * the man page (scripts/man.sh writes them into doc/gitwal.1).
 */
static int cmd_help(int argc, char **argv)
{
	static char help_flag[] = "--help";
	const struct command *c;
	char *help_argv[3];
	if (argc > 2 && !strcmp(argv[1], "--man-options")) {
		if (!strcmp(argv[2], "common")) {
			gw_cli_man(stdout, gw_cli_common.options);
			return 0;
		}
		if (!(c = find(argv[2])) || !c->spec)
			return not_a_command(argv[2]);
		gw_cli_man(stdout, c->spec->options);
		return 0;
	}
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (!(c = find(argv[1])))
		return not_a_command(argv[1]);
	help_argv[0] = argv[1];
	help_argv[1] = help_flag;
	help_argv[2] = NULL;
	return c->run(2, help_argv);
}

static int cmd_version(int argc, char **argv)
{
	printf("gitwal %s\n", GITWAL_VERSION_STRING);
	return 0;
}

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
	const struct command *c;
	const char *name = argc > 1 ? argv[1] : NULL;
	int rc;

	if (!name) {
		usage(stderr);
		return 2;
	}
	/* gitwal --help and -h: the usage (gitwal help COMMAND is the command's). */
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "--version"))
		name = "version";
	if (!(c = find(name)))
		return not_a_command(name);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	git_libgit2_init();
	rc = c->run(argc - 1, argv + 1);
	git_libgit2_shutdown();
	return rc;
}
