/*
 * Thread-local last error. Every failing function sets it once, at the place
 * that knows the most, and callers may add context with gw_error_prefix().
 */
#include "gitwal/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define GW_ERROR_MAX 1024

static _Thread_local char error_text[GW_ERROR_MAX];
static _Thread_local int error_code;

static void strip_newlines(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

int gw_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_text, sizeof(error_text), fmt, ap);
	va_end(ap);
	strip_newlines(error_text);
	error_code = code ? code : GW_ERROR;
	return error_code;
}

int gw_error_set_errno(int code, const char *fmt, ...)
{
	int saved = errno;
	char buf[GW_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return gw_error_set(code, "%s: %s", buf, strerror(saved));
}

int gw_error_prefix(const char *fmt, ...)
{
	char prefix[GW_ERROR_MAX], old[GW_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(old, sizeof(old), "%s", error_text);
	snprintf(error_text, sizeof(error_text), "%s: %s", prefix, old);
	strip_newlines(error_text);
	if (!error_code)
		error_code = GW_ERROR;
	return error_code;
}

const char *gw_error_message(void)
{
	return error_text[0] ? error_text : "unknown error";
}

int gw_error_code(void)
{
	return error_code;
}

void gw_error_clear(void)
{
	error_text[0] = '\0';
	error_code = 0;
}
