/*
 * Times: the clock, RFC 3339 output, and the strict parser of user-given
 * times (include/gitwal/time.h). Calendar arithmetic is done here on integers
 * (days from the civil date and back, proleptic Gregorian) rather than with
 * timegm()/gmtime_r(): timegm normalises what it is given, so 2026-02-31
 * silently became March 3, and neither is defined over the whole int64 range
 * of stored times. Every field is checked against its range before any
 * arithmetic, so no input can overflow.
 */
#include "gitwal/time.h"
#include "gitwal/error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define US_PER_S 1000000LL
#define S_PER_DAY 86400LL

static const char *const month_names[12] = {"January", "February", "March",     "April",   "May",      "June",
					     "July",    "August",   "September", "October", "November", "December"};

int64_t gw_time_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse (civil_from_days); z is at most about 1.1e8 in magnitude for an int64 of microseconds. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;
	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

void gw_time_format(int64_t time_us, char *out, size_t n)
{
	/* Floor division: a time before the epoch still prints a fraction in [0, 999999]. */
	int64_t secs = time_us / US_PER_S, us = time_us % US_PER_S, days, sod, y;
	int m, d;
	if (us < 0) {
		us += US_PER_S;
		secs--;
	}
	days = secs / S_PER_DAY;
	sod = secs % S_PER_DAY;
	if (sod < 0) {
		sod += S_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	snprintf(out, n, "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ", (long long)y, m, d, (int)(sod / 3600),
		 (int)(sod / 60 % 60), (int)(sod % 60), (long long)us);
}

#define RFC3339_HINT "RFC 3339 (2026-11-25T14:02:00Z, an offset such as +01:00, an optional fraction)"
#define SYNTAX_HINT RFC3339_HINT " nor @<unix seconds>"

static int bad(const char *text, const char *why)
{
	return gw_error_set(GW_EINVALID, "time '%s' %s", text, why);
}

static int out_of_range(const char *text)
{
	return gw_error_set(GW_EINVALID,
			    "time '%s' is out of range: times go from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z", text);
}

/* Exactly n digits. */
static int digits(const char **p, int n, int *out)
{
	int i;
	*out = 0;
	for (i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		*out = *out * 10 + (**p - '0');
	}
	return 0;
}

/*
 * ".DIGITS" (optional): the microseconds, and whether digits past the sixth
 * were not all zero (the time lies strictly after the microsecond kept).
 */
static int fraction(const char **p, int64_t *us, int *beyond)
{
	int64_t scale = 100000;
	*us = 0;
	if (beyond)
		*beyond = 0;
	if (**p != '.')
		return 0;
	(*p)++;
	if (**p < '0' || **p > '9')
		return -1;
	for (; **p >= '0' && **p <= '9'; (*p)++) {
		if (scale) {
			*us += (**p - '0') * scale;
			scale /= 10;
		} else if (**p != '0' && beyond) {
			*beyond = 1;
		}
	}
	return 0;
}

/* "@[-]SECONDS[.FRACTION]" */
static int parse_unix(const char *text, int64_t *time_us)
{
	const char *p = text + 1, *start, *end;
	int negative = 0, beyond;
	int64_t secs = 0, us, t;

	if (*p == '-') {
		negative = 1;
		p++;
	}
	if (*p < '0' || *p > '9')
		return bad(text, "is not " SYNTAX_HINT);
	start = p;
	while (*p >= '0' && *p <= '9')
		p++;
	end = p;
	if (fraction(&p, &us, &beyond) < 0)
		return bad(text, "is not " SYNTAX_HINT);
	if (*p)
		return gw_error_set(GW_EINVALID, "time '%s': unexpected '%s' after the seconds", text, p);
	/* Twelve significant digits hold every second of the range; more are out of it, whatever they are. */
	while (start < end - 1 && *start == '0')
		start++;
	if (end - start > 12)
		return out_of_range(text);
	for (; start < end; start++)
		secs = secs * 10 + (*start - '0');
	if (negative) {
		/* The microsecond at or before the time given: -1.0000005 is -1.000001. */
		t = -(secs * US_PER_S + us) - (beyond ? 1 : 0);
	} else {
		t = secs * US_PER_S + us;
	}
	if (t < GW_TIME_MIN_US || t > GW_TIME_MAX_US)
		return out_of_range(text);
	*time_us = t;
	return 0;
}

static int parse_rfc3339(const char *text, int64_t *time_us)
{
	const char *p = text;
	int y, mo, d, h, mi, s, oh = 0, om = 0, sign = 0, offset;
	int64_t frac, days, secs, t;

	if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' || digits(&p, 2, &d) < 0 ||
	    (*p != 'T' && *p != 't' && *p != ' ') || !*p++ || digits(&p, 2, &h) < 0 || *p++ != ':' ||
	    digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &s) < 0 || fraction(&p, &frac, NULL) < 0)
		return bad(text, "is not " SYNTAX_HINT);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0)
			return bad(text, "is not " SYNTAX_HINT);
	} else if (!*p) {
		return bad(text, "has no offset: end it with Z (UTC) or an offset such as +01:00");
	} else {
		return bad(text, "is not " SYNTAX_HINT);
	}
	if (*p)
		return gw_error_set(GW_EINVALID, "time '%s': unexpected '%s' after the offset", text, p);
	if (mo < 1 || mo > 12)
		return gw_error_set(GW_EINVALID, "time '%s': month %02d is not 01 to 12", text, mo);
	if (d < 1 || d > days_in_month(y, mo))
		return gw_error_set(GW_EINVALID, "time '%s': day %02d is not a day of %s %04d (01 to %02d)", text, d,
				    month_names[mo - 1], y, days_in_month(y, mo));
	if (h > 23)
		return gw_error_set(GW_EINVALID, "time '%s': hour %02d is not 00 to 23", text, h);
	if (mi > 59)
		return gw_error_set(GW_EINVALID, "time '%s': minute %02d is not 00 to 59", text, mi);
	if (s > 60)
		return gw_error_set(GW_EINVALID, "time '%s': second %02d is not 00 to 59 (60 for a leap second)", text, s);
	if (om > 59)
		return gw_error_set(GW_EINVALID, "time '%s': offset minute %02d is not 00 to 59", text, om);
	offset = sign * (oh * 60 + om);
	if (offset < GW_TIME_OFFSET_MIN_MINUTES || offset > GW_TIME_OFFSET_MAX_MINUTES)
		return gw_error_set(GW_EINVALID, "time '%s': offset %c%02d:%02d is not between -12:00 and +14:00", text,
				    sign < 0 ? '-' : '+', oh, om);
	/*
	 * Every field is in range: this cannot overflow (|secs| < 2^39). A
	 * fraction cut to the microsecond keeps the one at or before the time
	 * given, on either side of the epoch (the fraction is added).
	 */
	days = days_from_civil(y, mo, d);
	secs = days * S_PER_DAY + h * 3600 + mi * 60 + s - (int64_t)offset * 60;
	if (s == 60) {
		/* A leap second is inserted only as the last second of a UTC month: 23:59:60Z, then the 1st 00:00:00Z. */
		int64_t ny;
		int nm, nd;
		civil_from_days(secs >= 0 ? secs / S_PER_DAY : (secs - (S_PER_DAY - 1)) / S_PER_DAY, &ny, &nm, &nd);
		if (((secs % S_PER_DAY) + S_PER_DAY) % S_PER_DAY != 0 || nd != 1)
			return gw_error_set(GW_EINVALID,
					    "time '%s': second 60 is a leap second, which is only ever 23:59:60 UTC on "
					    "the last day of a month",
					    text);
		/* Unix time has no leap second: its last microsecond before the next minute. */
		t = secs * US_PER_S - 1;
	} else {
		t = secs * US_PER_S + frac;
	}
	if (t < GW_TIME_MIN_US || t > GW_TIME_MAX_US)
		return out_of_range(text);
	*time_us = t;
	return 0;
}

int gw_time_parse(const char *text, int64_t *time_us)
{
	if (!text || !*text)
		return gw_error_set(GW_EINVALID, "time '' is empty: give " RFC3339_HINT " or @<unix seconds>");
	return text[0] == '@' ? parse_unix(text, time_us) : parse_rfc3339(text, time_us);
}

/*
 * Durations (gw_duration_parse): one parser for every period a user gives,
 * retention windows and the S3 store's time limits alike, so "90m" means
 * the same everywhere. Largest unit first, so the formatter picks the
 * largest that divides exactly.
 */
static const struct {
	const char *unit;
	int64_t us;
} duration_units[] = {{"d", S_PER_DAY * US_PER_S}, {"h", 3600 * US_PER_S}, {"m", 60 * US_PER_S},
		      {"s", US_PER_S},		   {"ms", 1000}};
#define NDURATION_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

int gw_duration_parse(const char *text, int64_t *us)
{
	int64_t n = 0;
	const char *p = text;
	size_t i;
	/* Digits only: no sign, no blank (strtoll would take " +5d"), and an overflow is caught below. */
	if (!text || *p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > GW_DURATION_MAX_US)
			goto long_;
		n = n * 10 + (*p - '0');
	}
	for (i = 0; i < NDURATION_UNITS; i++)
		if (!strcmp(p, duration_units[i].unit))
			break;
	if (i == NDURATION_UNITS || n == 0)
		goto bad;
	if (n > GW_DURATION_MAX_US / duration_units[i].us)
		goto long_;
	*us = n * duration_units[i].us;
	return 0;
long_:
	return gw_error_set(GW_EINVALID, "'%s' is longer than 100 years", text);
bad:
	return gw_error_set(GW_EINVALID, "'%s' is not a duration like 7d, 12h, 30m, 90s or 500ms", text ? text : "");
}

void gw_duration_format(int64_t us, char *out, size_t n)
{
	size_t i;
	for (i = 0; i < NDURATION_UNITS; i++)
		if (us > 0 && us % duration_units[i].us == 0) {
			snprintf(out, n, "%lld%s", (long long)(us / duration_units[i].us), duration_units[i].unit);
			return;
		}
	snprintf(out, n, "%lldus", (long long)us);
}
