/*
 * The option layer of the gitwal command line. Each command declares its
 * options once, in a table of gw_opt (name, one-letter form, value, help,
 * range or parser, and the environment variable and config key it resolves
 * from), and everything else comes from that table: parsing (GNU getopt,
 * so options and operands mix, a unique prefix names an option, --name=value
 * works and "--" ends the options), checking each value as it comes, the
 * usage errors in one wording for every command, the resolution of what the
 * command line left unset (gw_cli_resolve: the environment, then the config
 * file, then the defaults), the --help text, and the man page's option
 * sections ('gitwal help --man-options CMD' writes them into doc/gitwal.1,
 * and test_man checks they are the same).
 *
 * The options of a command fill one struct of its own whose first member is
 * its gw_cli (so the common options, which fill the gw_cli, serve them all).
 */
#ifndef GITWAL_CLI_OPTIONS_H
#define GITWAL_CLI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
	GW_OPT_END = 0, /* ends a table */
	GW_OPT_FLAG,    /* --NAME: the int field becomes ival */
	GW_OPT_STRING,  /* --NAME VALUE: the const char * field points at VALUE (argv outlives the command) */
	GW_OPT_COPY,    /* --NAME VALUE: the char * field gets a copy, freed by its owner */
	GW_OPT_INT,     /* --NAME N: an int from min to max */
	GW_OPT_NUMBER,  /* --NAME X: a finite double from min to max (above min with GW_OPT_ABOVE_MIN) */
	GW_OPT_CUSTOM,  /* --NAME [VALUE]: parse(opts, value) (value NULL when arg is NULL) */
	GW_OPT_HELP,    /* -h, --help: print the help and stop (exit 0) */
	GW_OPT_OPERAND, /* not an option: an operand (or a case) listed with them ("REL...", "(neither)") */
	GW_OPT_TEXT,    /* not an option: a line of help among them (a heading; "" a blank line) */
} gw_opt_type;

/* The most options a command has, its own and the common ones together. */
#define GW_CLI_MAX_OPTIONS 48

/* gw_opt.flags */
#define GW_OPT_ABOVE_MIN 1u /* GW_OPT_NUMBER: min itself is out of range */
#define GW_OPT_SETTING 2u   /* not on the command line: only the environment or the config file give it */
#define GW_OPT_ENV_EMPTY 4u /* an empty environment variable counts (else it is unset) */
#define GW_OPT_MAN_ONLY 8u  /* listed in the man page, not in --help (whose usage line says it) */

typedef struct gw_opt {
	gw_opt_type type;
	const char *name;   /* the long option without "--"; an operand's label; a TEXT line */
	char short_name;    /* its one-letter form ('j'), or 0 */
	const char *arg;    /* the value's name in the help ("N"); NULL for a flag */
	const char *help;   /* lines without indentation, '\n' between them */
	size_t offset;      /* of the field it sets, in the command's options struct */
	double min, max;    /* GW_OPT_INT, GW_OPT_NUMBER */
	int ival;           /* GW_OPT_FLAG: the value it sets */
	unsigned flags;
	/* GW_OPT_CUSTOM: 0, GW_EINVALID (a usage error naming the option) or another GW_E*, the error set */
	int (*parse)(void *opts, const char *value);
	const char *env;    /* the environment variable it resolves from, or NULL */
	const char *config; /* the git-config key it resolves from, or NULL */
} gw_opt;

/* Table entries, for brevity: T is the command's options struct, F its field. */
#define GW_OPT_FLAG_(NAME, T, F, HELP) \
	{.type = GW_OPT_FLAG, .name = NAME, .offset = offsetof(T, F), .ival = 1, .help = HELP}
#define GW_OPT_STRING_(NAME, ARG, T, F, HELP) \
	{.type = GW_OPT_STRING, .name = NAME, .arg = ARG, .offset = offsetof(T, F), .help = HELP}
#define GW_OPT_NUMBER_(NAME, ARG, T, F, MIN, MAX, HELP) \
	{.type = GW_OPT_NUMBER, .name = NAME, .arg = ARG, .offset = offsetof(T, F), .min = MIN, .max = MAX, .help = HELP}
#define GW_OPT_CUSTOM_(NAME, ARG, FN, HELP) {.type = GW_OPT_CUSTOM, .name = NAME, .arg = ARG, .parse = FN, .help = HELP}
#define GW_OPT_OPERAND_(LABEL, HELP) {.type = GW_OPT_OPERAND, .name = LABEL, .help = HELP}
#define GW_OPT_TEXT_(LINE) {.type = GW_OPT_TEXT, .name = LINE}
#define GW_OPT_END_ {.type = GW_OPT_END}

/* gw_cli_spec.flags */
#define GW_CLI_OPERANDS 1u /* the command takes operands and checks them itself */

/* A command: its help around the options, and its options. */
typedef struct gw_cli_spec {
	const char *name;      /* "backup": errors read "gitwal backup: ..." */
	const char *head;      /* the help before the options: usage line(s), description, a blank line */
	const gw_opt *options; /* its own (a name the common options also have replaces theirs) */
	int column;            /* where the options' help starts in --help */
	const char *tail;      /* the help after the options */
	unsigned flags;
	const char *unexpected; /* added to "unexpected argument 'X'" ("" when NULL) */
} gw_cli_spec;

/* The options every command takes (src/cli/common.c), with the help's block of them. */
extern const gw_cli_spec gw_cli_common;

/* gw_cli_parse went through: the command goes on. */
#define GW_CLI_GO (-1)

/*
 * Parse argv (argv[0] is the command) into opts, whose first member is its
 * gw_cli, with spec's options and the common ones; each value is checked
 * and stored as it comes, so the first bad one is the error. Returns
 * GW_CLI_GO, with *operands the index of the first operand (getopt moves
 * them after the options), or the command's exit status with what it means
 * printed: 0 after --help, 2 for a usage error, 1 for any other failure.
 */
int gw_cli_parse(const gw_cli_spec *spec, int argc, char **argv, void *opts, int *operands);
/*
 * Take value for o into opts, as the command line does; returns 0, or a
 * GW_E* code with the error set (GW_EINVALID: the value is wrong, in words
 * that follow "option --NAME: ").
 */
int gw_opt_set(const gw_opt *o, void *opts, const char *value);
/* Whether o's field in opts holds a value (a string, or a number other than 0). */
int gw_opt_is_set(const gw_opt *o, const void *opts);
/*
 * Whether o was given, by the command line or (gw_cli_resolve) the
 * environment or the config file, or holds a value: then what comes later
 * in the order (the environment, the config file, the defaults) leaves it
 * alone. "Given" is recorded apart from the value, so `--keep-full 0` on
 * the command line stays 0 whatever gitwal.keepFull says.
 */
int gw_opt_given(const gw_opt *o, const void *opts);
/* Record that o was given (opts begins with its gw_cli). */
void gw_opt_mark_given(const gw_opt *o, void *opts);

/* The command's help: head, options, tail, then the common options. */
void gw_cli_help(FILE *out, const gw_cli_spec *spec);
/* spec's head, options and tail alone. */
void gw_cli_help_block(FILE *out, const gw_cli_spec *spec);
/* One item of a list: "  LABEL", then text (lines, '\n' between) from column on. */
void gw_cli_help_item(FILE *out, const char *label, const char *text, int column);
/* The options of a table as man page (roff) paragraphs. */
void gw_cli_man(FILE *out, const gw_opt *options);

/* Print "gitwal CMD: <the last error>" to stderr; returns the exit status 1. */
int gw_cli_fail(const char *cmd);
/* Print "gitwal CMD: <message> (see 'gitwal CMD --help')" to stderr; returns the exit status 2. */
int gw_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
