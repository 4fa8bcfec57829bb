/*
 * The option layer (options.h): the one getopt_long loop of the command
 * line, the value checks, the usage errors, and the --help and man page
 * text, all from the commands' tables.
 */
#include "cli/cli.h"
#include "gitwal/error.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* More than any command has: the table is on the stack. */
#define MAX_OPTIONS GW_CLI_MAX_OPTIONS

int gw_cli_fail(const char *cmd)
{
	fprintf(stderr, "gitwal %s: %s\n", cmd, gw_error_message());
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

static int takes_value(const gw_opt *o)
{
	return o->type != GW_OPT_FLAG && o->type != GW_OPT_HELP && (o->type != GW_OPT_CUSTOM || o->arg);
}

/* An entry the command line can name. */
static int is_option(const gw_opt *o)
{
	return o->type != GW_OPT_OPERAND && o->type != GW_OPT_TEXT && !(o->flags & GW_OPT_SETTING);
}

static const gw_opt *find(const gw_opt *table, const char *name)
{
	for (; table && table->type != GW_OPT_END; table++)
		if (is_option(table) && strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

int gw_opt_set(const gw_opt *o, void *opts, const char *value)
{
	char *field = (char *)opts + o->offset, *end;
	double d;
	switch (o->type) {
	case GW_OPT_FLAG:
		*(int *)field = o->ival;
		return 0;
	case GW_OPT_STRING:
		*(const char **)field = value;
		return 0;
	case GW_OPT_COPY: {
		char *copy = strdup(value);
		if (!copy)
			return gw_error_set(GW_ERROR, "out of memory");
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case GW_OPT_INT: {
		long v;
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || *end || end == value || v < o->min || v > o->max)
			return gw_error_set(GW_EINVALID, "'%s' is not a number from %g to %g", value, o->min, o->max);
		*(int *)field = (int)v;
		return 0;
	}
	case GW_OPT_NUMBER:
		errno = 0;
		d = strtod(value, &end);
		if (errno || end == value || *end || !isfinite(d) || d < o->min || d > o->max ||
		    ((o->flags & GW_OPT_ABOVE_MIN) && d == o->min))
			return gw_error_set(GW_EINVALID,
					    (o->flags & GW_OPT_ABOVE_MIN) ? "'%s' is not a number above %g and at most %g"
									  : "'%s' is not a number from %g to %g",
					    value, o->min, o->max);
		*(double *)field = d;
		return 0;
	case GW_OPT_CUSTOM:
		return o->parse(opts, value);
	default:
		return 0;
	}
}

int gw_opt_is_set(const gw_opt *o, const void *opts)
{
	const char *field = (const char *)opts + o->offset;
	switch (o->type) {
	case GW_OPT_STRING:
	case GW_OPT_COPY:
		return *(const char *const *)field != NULL;
	case GW_OPT_INT:
	case GW_OPT_FLAG:
		return *(const int *)field != 0;
	case GW_OPT_NUMBER:
		return *(const double *)field != 0;
	default:
		return 0;
	}
}

int gw_opt_given(const gw_opt *o, const void *opts)
{
	const gw_cli *cli = opts;
	size_t i;
	for (i = 0; i < cli->ngiven; i++)
		if (cli->given[i] == o)
			return 1;
	return gw_opt_is_set(o, opts);
}

void gw_opt_mark_given(const gw_opt *o, void *opts)
{
	gw_cli *cli = opts;
	size_t i;
	for (i = 0; i < cli->ngiven; i++)
		if (cli->given[i] == o)
			return;
	/* Room for every option: a command has at most GW_CLI_MAX_OPTIONS (gw_cli_parse takes no more). */
	if (cli->ngiven < GW_CLI_MAX_OPTIONS)
		cli->given[cli->ngiven++] = o;
}

int gw_cli_parse(const gw_cli_spec *spec, int argc, char **argv, void *opts, int *operands)
{
	const gw_opt *list[MAX_OPTIONS], *tables[2] = {spec->options, gw_cli_common.options}, *o;
	struct option longopts[MAX_OPTIONS + 1];
	char shorts[2 * MAX_OPTIONS + 1];
	size_t n = 0, k = 0, t, i;
	int c, rc;

	((gw_cli *)opts)->spec = spec;
	/* The command's options, then the common ones it does not replace. */
	for (t = 0; t < 2; t++)
		for (o = tables[t]; o && o->type != GW_OPT_END && n < MAX_OPTIONS; o++) {
			if (!is_option(o) || (t == 1 && find(spec->options, o->name)))
				continue;
			longopts[n] = (struct option){o->name, takes_value(o) ? required_argument : no_argument, NULL,
						      256 + (int)n};
			if (o->short_name) {
				shorts[k++] = o->short_name;
				if (takes_value(o))
					shorts[k++] = ':';
			}
			list[n++] = o;
		}
	longopts[n] = (struct option){0};
	shorts[k] = '\0';
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		for (o = NULL, i = 0; !o && i < n; i++)
			if (c == 256 + (int)i || (c < 256 && c == list[i]->short_name))
				o = list[i];
		if (!o)
			return gw_cli_usage_error(spec->name, "unknown option or missing value: '%s'", argv[optind - 1]);
		if (o->type == GW_OPT_HELP) {
			gw_cli_help(stdout, spec);
			return 0;
		}
		if ((rc = gw_opt_set(o, opts, optarg)) < 0)
			return rc == GW_EINVALID
				       ? gw_cli_usage_error(spec->name, "option --%s: %s", o->name, gw_error_message())
				       : gw_cli_fail(spec->name);
		gw_opt_mark_given(o, opts);
	}
	if (optind < argc && !(spec->flags & GW_CLI_OPERANDS))
		return gw_cli_usage_error(spec->name, "unexpected argument '%s'%s", argv[optind],
					  spec->unexpected ? spec->unexpected : "");
	*operands = optind;
	return GW_CLI_GO;
}

void gw_cli_help_item(FILE *out, const char *label, const char *text, int column)
{
	int at = fprintf(out, "  %s", label);
	size_t len;
	if (at + 1 > column) {
		/* A long label stands on its own line. */
		fputc('\n', out);
		at = 0;
	}
	for (text = text ? text : "";; text += len + 1) {
		len = strcspn(text, "\n");
		fprintf(out, "%*s%.*s\n", column - at, "", (int)len, text);
		at = 0;
		if (!text[len])
			break;
	}
}

void gw_cli_help_block(FILE *out, const gw_cli_spec *spec)
{
	const gw_opt *o;
	char label[128];
	fputs(spec->head, out);
	for (o = spec->options; o && o->type != GW_OPT_END; o++) {
		if (o->type == GW_OPT_TEXT) {
			fprintf(out, "%s\n", o->name);
		} else if (!(o->flags & (GW_OPT_SETTING | GW_OPT_MAN_ONLY))) {
			snprintf(label, sizeof(label), "%s%s%s%s", o->type == GW_OPT_OPERAND ? "" : "--", o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
			gw_cli_help_item(out, label, o->help, spec->column);
		}
	}
	fputs(spec->tail ? spec->tail : "", out);
}

void gw_cli_help(FILE *out, const gw_cli_spec *spec)
{
	gw_cli_help_block(out, spec);
	fputc('\n', out);
	gw_cli_help_block(out, &gw_cli_common);
}

/* Text for roff: hyphens as \-, backslashes as \e, and a line never starts a request. */
static void man_text(FILE *out, const char *s, size_t len)
{
	size_t i;
	if (len && (s[0] == '.' || s[0] == '\''))
		fputs("\\&", out);
	for (i = 0; i < len; i++) {
		if (s[i] == '-')
			fputs("\\-", out);
		else if (s[i] == '\\')
			fputs("\\e", out);
		else
			fputc(s[i], out);
	}
}

static void man_lines(FILE *out, const char *text)
{
	size_t len;
	for (text = text ? text : "";; text += len + 1) {
		while (*text == ' ')
			text++;
		len = strcspn(text, "\n");
		if (len) {
			man_text(out, text, len);
			fputc('\n', out);
		}
		if (!text[len])
			break;
	}
}

void gw_cli_man(FILE *out, const gw_opt *o)
{
	for (; o && o->type != GW_OPT_END; o++) {
		if (o->flags & GW_OPT_SETTING)
			continue;
		if (o->type == GW_OPT_TEXT) {
			if (*o->name) {
				fputs(".PP\n", out);
				man_lines(out, o->name);
			}
			continue;
		}
		fputs(".TP\n", out);
		if (o->type == GW_OPT_OPERAND) {
			fputs("\\fI", out);
			man_text(out, o->name, strlen(o->name));
		} else {
			if (o->short_name)
				fprintf(out, "\\fB\\-%c\\fR, ", o->short_name);
			fputs("\\fB\\-\\-", out);
			man_text(out, o->name, strlen(o->name));
			if (o->arg) {
				fputs("\\fR \\fI", out);
				man_text(out, o->arg, strlen(o->arg));
			}
		}
		fputs("\\fR\n", out);
		man_lines(out, o->help);
	}
}
