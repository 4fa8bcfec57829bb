/*
 * Unit tests for src/cli/options.c and the common options' resolution in
 * src/cli/common.c: parsing (flags, values, one-letter forms, prefixes,
 * operands anywhere, "--"), the usage errors (unknown options, missing
 * values, range errors, unexpected arguments) in the words every command
 * prints, the precedence command line > environment > config file >
 * default, and the --help and man page text rendered from a table.
 */
#include "testutil.h"

#include "cli/cli.h"

#include <git2.h>

typedef struct {
	gw_cli cli; /* first, as in every command's options */
	int flag;
	const char *name;
	double ratio;
	int level;
	const char *picked;
} t_opts;

static int take_pick(void *opts, const char *value)
{
	if (!strcmp(value, "bad"))
		return gw_error_set(GW_EINVALID, "'%s' is not a pick", value);
	if (!strcmp(value, "broken"))
		return gw_error_set(GW_EIO, "the picker is broken");
	((t_opts *)opts)->picked = value;
	return 0;
}

static const gw_opt t_options[] = {
	GW_OPT_OPERAND_("THING...", "things to work on"),
	{.type = GW_OPT_FLAG, .name = "flag", .short_name = 'f', .offset = offsetof(t_opts, flag), .ival = 7,
	 .help = "a flag"},
	GW_OPT_STRING_("name", "NAME", t_opts, name, "a name\nover two lines"),
	{.type = GW_OPT_NUMBER, .name = "ratio", .arg = "R", .offset = offsetof(t_opts, ratio), .min = 0, .max = 1,
	 .flags = GW_OPT_ABOVE_MIN, .help = "a ratio"},
	{.type = GW_OPT_INT, .name = "level", .short_name = 'l', .arg = "N", .offset = offsetof(t_opts, level),
	 .min = 1, .max = 9, .help = "a level"},
	GW_OPT_TEXT_("A heading:"),
	GW_OPT_CUSTOM_("pick", "WHAT", take_pick, "pick one"),
	GW_OPT_NUMBER_("a-very-long-option-name", "VALUE", t_opts, ratio, 0, 5, "its help starts on the next line"),
	GW_CLI_JOBS('j', "at once"),
	{.type = GW_OPT_FLAG, .name = "hidden", .offset = offsetof(t_opts, flag), .ival = 1, .flags = GW_OPT_MAN_ONLY,
	 .help = "-only\n.in the\n'man' page\\"},
	GW_OPT_END_,
};

static const gw_cli_spec t_spec = {
	.name = "t",
	.head = "usage: gitwal t [--flag] THING...\n\n",
	.options = t_options,
	.column = 14,
	.tail = "\nThe end.\n",
	.flags = GW_CLI_OPERANDS,
};

static const gw_cli_spec t_spec_no_operands = {
	.name = "t",
	.head = "usage: gitwal t\n\n",
	.options = t_options,
	.column = 14,
	.unexpected = " (a hint)",
};

/* What a function wrote to stdout or stderr (fd) meanwhile. */
typedef struct {
	int fd, saved;
	FILE *file;
	char text[16384];
} capture;

static void capture_start(capture *c, int fd)
{
	fflush(fd == 1 ? stdout : stderr);
	c->fd = fd;
	assert_non_null(c->file = tmpfile());
	c->saved = dup(fd);
	assert_true(dup2(fileno(c->file), fd) >= 0);
}

static const char *capture_end(capture *c)
{
	size_t n;
	fflush(c->fd == 1 ? stdout : stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	rewind(c->file);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->file);
	c->text[n] = '\0';
	fclose(c->file);
	return c->text;
}

/* The arguments of the last parse, as getopt left them (operands after the options). */
static char *argv[32];

/* gw_cli_parse on a NULL-terminated list of arguments (after "t"); its status, what it wrote to stderr. */
static int parse(const gw_cli_spec *spec, t_opts *o, int *operands, char **args, capture *err)
{
	int argc = 1, rc;
	argv[0] = (char *)"t";
	while (*args)
		argv[argc++] = *args++;
	argv[argc] = NULL;
	memset(o, 0, sizeof(*o));
	capture_start(err, 2);
	rc = gw_cli_parse(spec, argc, argv, o, operands);
	capture_end(err);
	return rc;
}

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})

static void test_parse_values(void **state)
{
	t_opts o;
	capture err;
	int first = 0;
	char **args = ARGS("x", "--flag", "--name=n1", "--ratio", "0.5", "-l3", "y", "--pick", "p", "--jobs", "4",
			   "--store", "file:///s", "--", "--level");
	(void)state;
	assert_int_equal(parse(&t_spec, &o, &first, args, &err), GW_CLI_GO);
	assert_string_equal(err.text, "");
	assert_int_equal(o.flag, 7);
	assert_string_equal(o.name, "n1");
	assert_true(o.ratio == 0.5);
	assert_int_equal(o.level, 3);
	assert_string_equal(o.picked, "p");
	assert_int_equal(o.cli.jobs, 4);
	assert_string_equal(o.cli.store_url, "file:///s");
	assert_ptr_equal(o.cli.spec, &t_spec);
	/* Operands move after the options; "--" ends them. */
	assert_int_equal(first, 13);
	assert_string_equal(argv[first], "x");
	assert_string_equal(argv[first + 1], "y");
	assert_string_equal(argv[first + 2], "--level");
	assert_null(argv[first + 3]);
	gw_cli_dispose(&o.cli);

	/* A unique prefix names an option; the last of a repeated option wins; bundled one-letter forms. */
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--na", "a", "--name", "b", "-fl", "9", "--ro", "r"), &err),
			 GW_CLI_GO);
	assert_string_equal(o.name, "b");
	assert_int_equal(o.flag, 7);
	assert_int_equal(o.level, 9);
	assert_string_equal(o.cli.root, "r");
	gw_cli_dispose(&o.cli);
}

static void test_unknown_and_missing(void **state)
{
	t_opts o;
	capture err;
	int first;
	(void)state;
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--bogus"), &err), 2);
	assert_string_equal(err.text, "gitwal t: unknown option or missing value: '--bogus' (see 'gitwal t --help')\n");
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("x", "--name"), &err), 2);
	assert_string_equal(err.text, "gitwal t: unknown option or missing value: '--name' (see 'gitwal t --help')\n");
	/* A flag given a value, an ambiguous prefix, a one-letter form not declared. */
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--flag=1"), &err), 2);
	assert_non_null(strstr(err.text, "'--flag=1'"));
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--h"), &err), 2); /* --help or --hidden */
	assert_non_null(strstr(err.text, "'--h'"));
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("-x"), &err), 2);
	assert_non_null(strstr(err.text, "'-x'"));
	/* The common options are there; -h is, and nothing else. */
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--hidden", "--jobs", "2"), &err), GW_CLI_GO);
	assert_int_equal(o.flag, 1);
}

static void test_range_errors(void **state)
{
	static const struct {
		const char *arg, *value, *message;
	} cases[] = {
		{"--level", "0", "option --level: '0' is not a number from 1 to 9"},
		{"--level", "10", "option --level: '10' is not a number from 1 to 9"},
		{"--level", "2.5", "option --level: '2.5' is not a number from 1 to 9"},
		{"--level", "", "option --level: '' is not a number from 1 to 9"},
		{"--level", "99999999999999999999", "option --level: '99999999999999999999' is not a number from 1 to 9"},
		{"--ratio", "0", "option --ratio: '0' is not a number above 0 and at most 1"},
		{"--ratio", "1.5", "option --ratio: '1.5' is not a number above 0 and at most 1"},
		{"--ratio", "nan", "option --ratio: 'nan' is not a number above 0 and at most 1"},
		{"--ratio", "0.5x", "option --ratio: '0.5x' is not a number above 0 and at most 1"},
		{"--a-very-long-option-name", "-1", "option --a-very-long-option-name: '-1' is not a number from 0 to 5"},
		{"--jobs", "257", "option --jobs: '257' is not a number from 1 to 256"},
		{"--pick", "bad", "option --pick: 'bad' is not a pick"},
	};
	char expect[256];
	t_opts o;
	capture err;
	int first;
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&t_spec, &o, &first, ARGS((char *)cases[i].arg, (char *)cases[i].value), &err), 2);
		snprintf(expect, sizeof(expect), "gitwal t: %s (see 'gitwal t --help')\n", cases[i].message);
		assert_string_equal(err.text, expect);
	}
	/* The first bad value is the error. */
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--level", "0", "--ratio", "0"), &err), 2);
	assert_non_null(strstr(err.text, "--level"));
	/* A failure that is not the value's: exit 1, the error alone. */
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--pick", "broken"), &err), 1);
	assert_string_equal(err.text, "gitwal t: the picker is broken\n");
	/* The range's bounds themselves. */
	assert_int_equal(parse(&t_spec, &o, &first, ARGS("--level", "9", "--ratio", "1", "--jobs", "1"), &err),
			 GW_CLI_GO);
}

static void test_operands(void **state)
{
	t_opts o;
	capture err;
	int first = -5;
	(void)state;
	assert_int_equal(parse(&t_spec_no_operands, &o, &first, ARGS("--flag", "extra", "more"), &err), 2);
	assert_string_equal(err.text, "gitwal t: unexpected argument 'extra' (a hint) (see 'gitwal t --help')\n");
	assert_int_equal(first, -5);
	assert_int_equal(parse(&t_spec_no_operands, &o, &first, ARGS("--flag"), &err), GW_CLI_GO);
	assert_int_equal(first, 2);
}

static const char t_help[] = "usage: gitwal t [--flag] THING...\n"
			     "\n"
			     "  THING...    things to work on\n"
			     "  --flag      a flag\n"
			     "  --name NAME a name\n"
			     "              over two lines\n"
			     "  --ratio R   a ratio\n"
			     "  --level N   a level\n"
			     "A heading:\n"
			     "  --pick WHAT pick one\n"
			     "  --a-very-long-option-name VALUE\n"
			     "              its help starts on the next line\n"
			     "  --jobs N    at once\n"
			     "\n"
			     "The end.\n"
			     "\n"
			     "Common options (also from the environment or the config file):\n"
			     "  --root DIR      the directory holding the bare repositories\n";

static void test_help(void **state)
{
	t_opts o;
	capture err, out;
	int first;
	char *args[] = {(char *)"t", (char *)"--level", (char *)"3", (char *)"-h", (char *)"--level", (char *)"0", NULL};
	(void)state;
	memset(&o, 0, sizeof(o));
	capture_start(&err, 2);
	capture_start(&out, 1);
	/* --help stops the parse (a bad value after it is not looked at) and exits 0. */
	assert_int_equal(gw_cli_parse(&t_spec, 6, args, &o, &first), 0);
	capture_end(&out);
	capture_end(&err);
	assert_string_equal(err.text, "");
	assert_memory_equal(out.text, t_help, sizeof(t_help) - 1);
	assert_non_null(strstr(out.text, "  Precedence: command line, then environment, then config file, then defaults.\n"));
	/* Neither the man-only option, nor --help, nor the jobs setting of the common table. */
	assert_null(strstr(out.text, "hidden"));
	assert_null(strstr(out.text, "--help"));
	assert_int_equal(o.level, 3);
}

static void test_man(void **state)
{
	capture out;
	(void)state;
	capture_start(&out, 1);
	gw_cli_man(stdout, t_options);
	capture_end(&out);
	assert_string_equal(out.text, ".TP\n"
				      "\\fITHING...\\fR\n"
				      "things to work on\n"
				      ".TP\n"
				      "\\fB\\-f\\fR, \\fB\\-\\-flag\\fR\n"
				      "a flag\n"
				      ".TP\n"
				      "\\fB\\-\\-name\\fR \\fINAME\\fR\n"
				      "a name\n"
				      "over two lines\n"
				      ".TP\n"
				      "\\fB\\-\\-ratio\\fR \\fIR\\fR\n"
				      "a ratio\n"
				      ".TP\n"
				      "\\fB\\-l\\fR, \\fB\\-\\-level\\fR \\fIN\\fR\n"
				      "a level\n"
				      ".PP\n"
				      "A heading:\n"
				      ".TP\n"
				      "\\fB\\-\\-pick\\fR \\fIWHAT\\fR\n"
				      "pick one\n"
				      ".TP\n"
				      "\\fB\\-\\-a\\-very\\-long\\-option\\-name\\fR \\fIVALUE\\fR\n"
				      "its help starts on the next line\n"
				      ".TP\n"
				      "\\fB\\-j\\fR, \\fB\\-\\-jobs\\fR \\fIN\\fR\n"
				      "at once\n"
				      ".TP\n"
				      "\\fB\\-\\-hidden\\fR\n"
				      "\\-only\n"
				      "\\&.in the\n"
				      "\\&'man' page\\e\n");
	/* The common table: --help is there (with -h), the jobs setting is not; a line never starts a request. */
	capture_start(&out, 1);
	gw_cli_man(stdout, gw_cli_common.options);
	capture_end(&out);
	assert_non_null(strstr(out.text, ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n"));
	assert_null(strstr(out.text, "jobs"));
	assert_non_null(strstr(out.text, ".PP\n$STATE is"));
}

/* The environment of the resolution tests: a state directory and no config file of the user's. */
static char tmp[128];

static int setup(void **state)
{
	char path[256];
	(void)state;
	tu_mkdtemp(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/state", tmp);
	setenv("GITWAL_STATE_DIR", path, 1);
	snprintf(path, sizeof(path), "%s/xdg", tmp);
	setenv("XDG_CONFIG_HOME", path, 1);
	unsetenv("GITWAL_ROOT");
	unsetenv("GITWAL_STORE");
	unsetenv("GITWAL_INDEX");
	unsetenv("GITWAL_CONFIG");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmrf(tmp);
	return 0;
}

static char *write_config(const char *name, const char *text)
{
	static char path[256];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	return path;
}

/* Parse args, resolve; returns gw_cli_resolve's result (o to be disposed). */
static int resolve(t_opts *o, char **args)
{
	capture err;
	int first;
	assert_int_equal(parse(&t_spec, o, &first, args, &err), GW_CLI_GO);
	return gw_cli_resolve(&o->cli, 0);
}

static void test_precedence(void **state)
{
	char cfg[256], expect[300];
	t_opts o;
	(void)state;
	snprintf(cfg, sizeof(cfg), "%s",
		 write_config("cfg", "[gitwal]\n\tstore = file:///cfg\n\tindex = /cfg.db\n\troot = /cfgroot\n\tjobs = 3\n"));

	/* Defaults alone. */
	assert_int_equal(resolve(&o, ARGS("x")), 0);
	snprintf(expect, sizeof(expect), "file://%s/state/store", tmp);
	assert_string_equal(o.cli.store_url, expect);
	snprintf(expect, sizeof(expect), "%s/state/index.db", tmp);
	assert_string_equal(o.cli.index_path, expect);
	assert_null(o.cli.root);
	assert_true(o.cli.jobs >= 1 && o.cli.jobs <= 8);
	gw_cli_dispose(&o.cli);

	/* The config file over the defaults. */
	assert_int_equal(resolve(&o, ARGS("--config", cfg)), 0);
	assert_string_equal(o.cli.store_url, "file:///cfg");
	assert_string_equal(o.cli.index_path, "/cfg.db");
	assert_string_equal(o.cli.root, "/cfgroot");
	assert_int_equal(o.cli.jobs, 3);
	gw_cli_dispose(&o.cli);

	/* The environment over the config file (an empty variable is unset). */
	setenv("GITWAL_STORE", "file:///env", 1);
	setenv("GITWAL_INDEX", "", 1);
	setenv("GITWAL_ROOT", "/envroot/", 1);
	assert_int_equal(resolve(&o, ARGS("--config", cfg)), 0);
	assert_string_equal(o.cli.store_url, "file:///env");
	assert_string_equal(o.cli.index_path, "/cfg.db");
	assert_string_equal(o.cli.root, "/envroot"); /* made absolute, without a trailing slash */
	gw_cli_dispose(&o.cli);

	/* The command line over everything. */
	assert_int_equal(resolve(&o, ARGS("--config", cfg, "--store", "file:///cli", "-j", "5", "--root", "/cliroot")), 0);
	assert_string_equal(o.cli.store_url, "file:///cli");
	assert_string_equal(o.cli.root, "/cliroot");
	assert_int_equal(o.cli.jobs, 5);
	gw_cli_dispose(&o.cli);
	unsetenv("GITWAL_STORE");
	unsetenv("GITWAL_INDEX");
	unsetenv("GITWAL_ROOT");

	/* GITWAL_CONFIG names the file; --config wins over it; else $XDG_CONFIG_HOME/gitwal/config. */
	setenv("GITWAL_CONFIG", cfg, 1);
	assert_int_equal(resolve(&o, ARGS("x")), 0);
	assert_string_equal(o.cli.store_url, "file:///cfg");
	gw_cli_dispose(&o.cli);
	assert_int_equal(resolve(&o, ARGS("--config", write_config("cfg2", "[gitwal]\n\tstore = file:///cfg2\n"))), 0);
	assert_string_equal(o.cli.store_url, "file:///cfg2");
	gw_cli_dispose(&o.cli);
	unsetenv("GITWAL_CONFIG");
	assert_int_equal(tu_sh("mkdir -p %s/xdg/gitwal && cp %s/cfg2 %s/xdg/gitwal/config", tmp, tmp, tmp), 0);
	assert_int_equal(resolve(&o, ARGS("x")), 0);
	assert_string_equal(o.cli.store_url, "file:///cfg2");
	gw_cli_dispose(&o.cli);
}

/* An option whose 0 is a value (--keep-full 0): given on the command line or in the environment, it stays 0. */
static const gw_opt zero_options[] = {
	{.type = GW_OPT_INT, .name = "level", .arg = "N", .offset = offsetof(t_opts, level), .min = 0, .max = 9,
	 .env = "GITWAL_TEST_LEVEL", .config = "gitwal.level", .help = "a level, 0 included"},
	GW_OPT_END_,
};
static const gw_cli_spec zero_spec = {.name = "z", .head = "usage: gitwal z\n", .options = zero_options, .column = 14};

static void test_zero_given(void **state)
{
	char cfg[256];
	capture err;
	t_opts o;
	int first;
	(void)state;
	snprintf(cfg, sizeof(cfg), "%s", write_config("zero", "[gitwal]\n\tlevel = 4\n"));
	assert_int_equal(parse(&zero_spec, &o, &first, ARGS("--config", cfg), &err), GW_CLI_GO);
	assert_int_equal(gw_cli_resolve(&o.cli, 0), 0);
	assert_int_equal(o.level, 4);
	gw_cli_dispose(&o.cli);
	/* The command line's 0 over the config file's 4. */
	assert_int_equal(parse(&zero_spec, &o, &first, ARGS("--config", cfg, "--level", "0"), &err), GW_CLI_GO);
	assert_true(gw_opt_given(&zero_options[0], &o));
	assert_int_equal(gw_cli_resolve(&o.cli, 0), 0);
	assert_int_equal(o.level, 0);
	gw_cli_dispose(&o.cli);
	/* The environment's 0 over the config file's 4, and the command line over the environment. */
	setenv("GITWAL_TEST_LEVEL", "0", 1);
	assert_int_equal(parse(&zero_spec, &o, &first, ARGS("--config", cfg), &err), GW_CLI_GO);
	assert_false(gw_opt_given(&zero_options[0], &o));
	assert_int_equal(gw_cli_resolve(&o.cli, 0), 0);
	assert_int_equal(o.level, 0);
	gw_cli_dispose(&o.cli);
	assert_int_equal(parse(&zero_spec, &o, &first, ARGS("--config", cfg, "--level", "2"), &err), GW_CLI_GO);
	assert_int_equal(gw_cli_resolve(&o.cli, 0), 0);
	assert_int_equal(o.level, 2);
	gw_cli_dispose(&o.cli);
	unsetenv("GITWAL_TEST_LEVEL");
}

static void test_resolve_errors(void **state)
{
	char expect[512], *bad;
	t_opts o;
	(void)state;
	/* A value of the config file out of range: named with the file and the key. */
	bad = write_config("badjobs", "[gitwal]\n\tjobs = 999\n");
	assert_int_equal(resolve(&o, ARGS("--config", bad)), GW_EINVALID);
	snprintf(expect, sizeof(expect), "config file %s: gitwal.jobs = '999' is not a number from 1 to 256", bad);
	assert_string_equal(gw_error_message(), expect);
	gw_cli_dispose(&o.cli);
	/* Not read when the command line gives it. */
	assert_int_equal(resolve(&o, ARGS("--config", bad, "--jobs", "2")), 0);
	gw_cli_dispose(&o.cli);
	/* A config file that does not parse, or is not there; GITWAL_CONFIG= names one that cannot be read. */
	assert_int_equal(resolve(&o, ARGS("--config", write_config("unparsable", "[gitwal\n"))), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "unparsable"));
	gw_cli_dispose(&o.cli);
	assert_int_equal(resolve(&o, ARGS("--config", "/nonexistent/cfg")), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "config file /nonexistent/cfg cannot be read"));
	gw_cli_dispose(&o.cli);
	setenv("GITWAL_CONFIG", "", 1);
	assert_int_equal(resolve(&o, ARGS("x")), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "config file  cannot be read"));
	gw_cli_dispose(&o.cli);
	unsetenv("GITWAL_CONFIG");
	/* A root is needed and none is given. */
	assert_int_equal(parse(&t_spec, &o, (int[]){0}, ARGS("x"), &(capture){0}), GW_CLI_GO);
	assert_int_equal(gw_cli_resolve(&o.cli, 1), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "no root directory: give --root DIR, set GITWAL_ROOT"));
	gw_cli_dispose(&o.cli);
}

int main(void)
{
	int rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_unknown_and_missing),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_operands),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_man),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_given, setup, teardown),
	};
	git_libgit2_init(); /* the config file is read with libgit2 */
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
