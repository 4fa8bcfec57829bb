/*
 * Points in time. gitwal keeps every time (records, manifests, index rows)
 * as microseconds since the Unix epoch, UTC; this is their RFC 3339 text for
 * output, the clock, and the strict parser of the times users give
 * (restore --until, audit --since). The parser refuses, naming the input and
 * the reason, anything that is not exactly one instant: a day the month does
 * not have, an hour, minute, second or offset out of its range, trailing
 * text, or a time outside the years 0000 to 9999 (DESIGN.md 11.1).
 */
#ifndef GITWAL_TIME_H
#define GITWAL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* What gw_time_parse accepts: RFC 3339's years, 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z. */
#define GW_TIME_MIN_US (-62167219200LL * 1000000)
#define GW_TIME_MAX_US (253402300799LL * 1000000 + 999999)
/* Offsets in use on Earth: -12:00 (Baker Island) to +14:00 (Line Islands). */
#define GW_TIME_OFFSET_MIN_MINUTES (-12 * 60)
#define GW_TIME_OFFSET_MAX_MINUTES (14 * 60)

/* Room for any gw_time_format output ("-292277-01-09T04:00:54.775808Z" at the extremes). */
#define GW_TIME_TEXT_MAX 40

/* "2026-11-25T17:04:55.123456Z" (any int64: years beyond 9999 get more digits). */
void gw_time_format(int64_t time_us, char *out, size_t n);
int64_t gw_time_now_us(void);
/*
 * Parse a point in time: RFC 3339 ("2026-11-25T14:02:00Z", "...+01:00",
 * optional fraction of a second, 't'/' ' and 'z' accepted) or
 * "@[-]<unix seconds>[.fraction]". Fractions finer than a microsecond are
 * cut to the microsecond before (never after) the time given. A leap second
 * (23:59:60 UTC on the last day of a month, the only place one can be) is
 * read as 23:59:59.999999: Unix time has no leap seconds, and that keeps it
 * after every earlier second and before the next minute. Microseconds since
 * the epoch; GW_EINVALID with a one-line message naming the input otherwise.
 */
int gw_time_parse(const char *text, int64_t *time_us);

/* The longest duration gw_duration_parse takes: 100 years, far past any retention, far from overflowing. */
#define GW_DURATION_MAX_US (36500LL * 86400 * 1000000)
/*
 * A duration: digits and one unit, "500ms", "90s", "30m", "12h" or "7d",
 * from 1 unit to GW_DURATION_MAX_US, into microseconds. GW_EINVALID with a
 * message naming the text otherwise (no sign, blank, other unit or zero).
 * Callers with narrower limits check them and prefix what the value is for.
 */
int gw_duration_parse(const char *text, int64_t *us);
/* The largest unit that divides it exactly ("7d", "90m", "1500ms"; "12us" when none does). */
void gw_duration_format(int64_t us, char *out, size_t n);

#endif
