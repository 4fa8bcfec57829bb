/*
 * gitwal error convention, shared by every module (in the manner of libgit2):
 * functions return 0 on success or a negative GW_E* code, and record a
 * detailed, one-line, thread-local message that names what was wrong
 * (repository, key, LSN, option). Callers print gw_error_message().
 */
#ifndef GITWAL_ERROR_H
#define GITWAL_ERROR_H

#include <stdarg.h>

enum {
	GW_OK = 0,
	GW_ERROR = -1,     /* generic failure */
	GW_ENOTFOUND = -2, /* key, repository or backup does not exist */
	GW_EEXISTS = -3,   /* write-once refusal: the name is taken */
	GW_EINVALID = -4,  /* bad input from the user (option, path, name) */
	GW_EIO = -5,       /* an operating-system or network I/O failure */
	GW_ECORRUPT = -6,  /* stored or source data fails a check */
	GW_EVERSION = -7,  /* a format version this build does not know */
	GW_EAUTH = -8,     /* credentials refused */
	GW_EUNSUPPORTED = -9, /* the input uses something gitwal refuses */
	GW_ECHANGED = -10, /* the source changed under us; retrying helps */
	GW_ELOCKED = -11,  /* an object under retention (Object Lock) that cannot be removed yet */
};

/* Record an error for this thread; returns code so callers can `return gw_error_set(...)`. */
int gw_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like gw_error_set, with ": strerror(errno)" appended. */
int gw_error_set_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("repository a.git: ..."). */
int gw_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *gw_error_message(void);
int gw_error_code(void);
void gw_error_clear(void);

#endif
