/*
 * Unit tests for src/util/time.c: RFC 3339 output, and the strict parser of
 * user-given times (calendar, field and offset ranges, leap seconds, the
 * @seconds form without overflow, one-line errors naming the input).
 */
#include "testutil.h"

#include "gitwal/time.h"

#include <time.h>

#define S(x) ((int64_t)(x) * 1000000)

static void accepts(const char *text, int64_t expect)
{
	int64_t got = 12345;
	int rc = gw_time_parse(text, &got);
	if (rc != 0)
		fail_msg("'%s' refused: %s", text, gw_error_message());
	if (got != expect)
		fail_msg("'%s' read as %lld, expected %lld", text, (long long)got, (long long)expect);
}

/* Refused with GW_EINVALID, output untouched, a one-line message naming the input and saying why. */
static void refuses(const char *text, const char *why)
{
	int64_t got = 12345;
	char named[300], *c;
	int rc = gw_time_parse(text, &got);
	if (rc != GW_EINVALID)
		fail_msg("'%s' gave %d (%lld), expected GW_EINVALID", text, rc, (long long)got);
	assert_int_equal(got, 12345);
	snprintf(named, sizeof(named), "time '%s'", text);
	for (c = named; *c; c++) /* as the message shows a line break of the input */
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	if (!strstr(gw_error_message(), named) || !strstr(gw_error_message(), why) || strchr(gw_error_message(), '\n'))
		fail_msg("'%s': message '%s' does not name it with '%s'", text, gw_error_message(), why);
}

static void test_format(void **state)
{
	char buf[GW_TIME_TEXT_MAX];
	(void)state;
	gw_time_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
	gw_time_format(1764090295123456LL, buf, sizeof(buf));
	assert_string_equal(buf, "2025-11-25T17:04:55.123456Z");
	gw_time_format(1000001, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:01.000001Z");
	/* Before the epoch the fraction still counts forward from the second. */
	gw_time_format(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
	gw_time_format(-S(86400) - 500000, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-30T23:59:59.500000Z");
	gw_time_format(GW_TIME_MIN_US, buf, sizeof(buf));
	assert_string_equal(buf, "0000-01-01T00:00:00.000000Z");
	gw_time_format(GW_TIME_MAX_US, buf, sizeof(buf));
	assert_string_equal(buf, "9999-12-31T23:59:59.999999Z");
	gw_time_format(S(951827696), buf, sizeof(buf));
	assert_string_equal(buf, "2000-02-29T12:34:56.000000Z");
	/* The whole int64 range formats (INT64_MAX means "the newest state" to restore). */
	gw_time_format(INT64_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "294247-01-10T04:00:54.775807Z");
	gw_time_format(INT64_MIN, buf, sizeof(buf));
	assert_string_equal(buf, "-290308-12-21T19:59:05.224192Z");
	assert_true(gw_time_now_us() > 1700000000000000LL);
}

static void test_calendar(void **state)
{
	(void)state;
	accepts("2026-11-25T14:02:00Z", S(1795615320));
	accepts("2024-02-29T00:00:00Z", S(1709164800));
	accepts("2000-02-29T12:34:56Z", S(951827696));
	accepts("2025-12-31T23:59:59Z", S(1767225599));
	refuses("2026-02-29T00:00:00Z", "day 29 is not a day of February 2026 (01 to 28)");
	refuses("2026-02-31T00:00:00Z", "day 31 is not a day of February 2026 (01 to 28)");
	refuses("2024-02-30T00:00:00Z", "day 30 is not a day of February 2024 (01 to 29)");
	refuses("2100-02-29T00:00:00Z", "February 2100"); /* a century is not a leap year... */
	accepts("2400-02-29T00:00:00Z", S(13574563200LL)); /* ...unless divisible by 400 */
	refuses("2026-04-31T00:00:00Z", "day 31 is not a day of April 2026 (01 to 30)");
	refuses("2026-01-00T00:00:00Z", "day 00");
	refuses("2026-01-32T00:00:00Z", "day 32");
	refuses("2026-00-10T00:00:00Z", "month 00 is not 01 to 12");
	refuses("2026-13-01T00:00:00Z", "month 13 is not 01 to 12");
}

static void test_clock_fields(void **state)
{
	(void)state;
	accepts("2026-01-01T23:59:59Z", S(1767225600 + 86399));
	refuses("2026-01-01T24:00:00Z", "hour 24 is not 00 to 23");
	refuses("2026-01-01T99:00:00Z", "hour 99");
	refuses("2026-01-01T23:60:00Z", "minute 60 is not 00 to 59");
	refuses("2026-01-01T23:59:61Z", "second 61");
	refuses("2026-01-01T23:59:99Z", "second 99");
	/* Fractions: any length, cut to the microsecond at or before the time given. */
	accepts("2026-01-01T00:00:00.5Z", S(1767225600) + 500000);
	accepts("2026-01-01T00:00:00.1234567Z", S(1767225600) + 123456);
	accepts("2026-01-01T00:00:00.999999999999999999999999Z", S(1767225600) + 999999);
	accepts("1969-12-31T23:59:59.5Z", -500000);
	accepts("1969-12-31T23:59:59.0000009Z", -S(1));
	/* RFC 3339's case and separator allowances. */
	accepts("2026-01-01t00:00:00z", S(1767225600));
	accepts("2026-01-01 00:00:00Z", S(1767225600));
}

static void test_leap_seconds(void **state)
{
	(void)state;
	/* 2016-12-31T23:59:60Z was a real one: read as the last microsecond of 23:59:59. */
	accepts("2016-12-31T23:59:60Z", S(1483228800) - 1);
	accepts("2016-12-31T23:59:60.5Z", S(1483228800) - 1);
	accepts("2017-01-01T00:59:60+01:00", S(1483228800) - 1);
	accepts("2016-12-31T18:59:60-05:00", S(1483228800) - 1);
	/* Wherever one could be inserted (the end of any UTC month), it is accepted. */
	accepts("2026-06-30T23:59:60Z", S(1782864000) - 1);
	accepts("9999-12-31T23:59:60Z", GW_TIME_MAX_US);
	/* Nowhere else. */
	refuses("2026-06-29T23:59:60Z", "leap second");
	refuses("2026-12-31T23:58:60Z", "leap second");
	refuses("2026-12-31T23:59:60+01:00", "leap second"); /* 22:59:60 UTC */
	refuses("2026-01-01T00:00:60Z", "leap second");
}

static void test_offsets(void **state)
{
	/* One instant, 2026-11-25T14:02:00Z, at offsets -12:00 to +14:00 (RFC 3339's -00:00: local unknown). */
	static const char *const same[] = {"2026-11-25T15:02:00+01:00", "2026-11-25T14:02:00-00:00",
					   "2026-11-26T04:02:00+14:00", "2026-11-25T02:02:00-12:00",
					   "2026-11-25T19:47:00+05:45"};
	/* Offsets past either end, out of their fields' ranges, or not written as RFC 3339's [+-]HH:MM. */
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"2026-11-26T04:03:00+14:01", "offset +14:01 is not between -12:00 and +14:00"},
		{"2026-11-25T02:01:00-12:01", "offset -12:01 is not between -12:00 and +14:00"},
		{"2026-11-25T14:02:00+15:00", "offset +15:00"},
		{"2026-11-25T14:02:00-13:00", "offset -13:00"},
		{"2026-11-25T14:02:00+99:00", "offset +99:00"},
		{"2026-11-25T14:02:00+01:60", "offset minute 60 is not 00 to 59"},
		{"2026-11-25T14:02:00+0100", "is not RFC 3339"},
		{"2026-11-25T14:02:00+1:00", "is not RFC 3339"},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		accepts(same[i], S(1795615320));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuses(bad[i].text, bad[i].why);
}

static void test_range(void **state)
{
	(void)state;
	accepts("1970-01-01T00:00:00Z", 0);
	accepts("1969-12-31T23:59:59Z", -S(1));
	accepts("0000-01-01T00:00:00Z", GW_TIME_MIN_US);
	accepts("9999-12-31T23:59:59.999999Z", GW_TIME_MAX_US);
	refuses("0000-01-01T00:00:00+01:00", "out of range");
	refuses("9999-12-31T23:59:59-01:00", "out of range");
	accepts("@0", 0);
	accepts("@1764090295", S(1764090295));
	accepts("@1764090295.123456", S(1764090295) + 123456);
	accepts("@1.5", 1500000);
	accepts("@1.0000009", S(1));
	accepts("@0000000000000000000000000000001", S(1));
	accepts("@253402300799.999999", GW_TIME_MAX_US);
	accepts("@-1", -S(1));
	accepts("@-1.5", -1500000);
	accepts("@-1.0000005", -S(1) - 1); /* the microsecond at or before it */
	accepts("@-0", 0);
	accepts("@-62167219200", GW_TIME_MIN_US);
	refuses("@253402300800", "out of range");
	refuses("@-62167219201", "out of range");
	refuses("@-62167219200.000001", "out of range");
	/* Digits enough to overflow any integer: refused by their count, never computed. */
	refuses("@99999999999999999999", "out of range");
	refuses("@9223372036854775807", "out of range");
	refuses("@9223372036854775808", "out of range");
	refuses("@-9223372036854775809", "out of range");
	refuses("@18446744073709551616.5", "out of range");
	refuses("@99999999999999999999999999999999999999999999999999999999999999999999999999999999", "out of range");
}

static void test_syntax(void **state)
{
	(void)state;
	refuses("", "is empty");
	refuses("garbage", "is not RFC 3339");
	refuses("@", "is not RFC 3339");
	refuses("@-", "is not RFC 3339");
	refuses("@+5", "is not RFC 3339");
	refuses("@ 5", "is not RFC 3339");
	refuses("@--5", "is not RFC 3339");
	refuses("@1.", "is not RFC 3339");
	refuses("@.5", "is not RFC 3339");
	refuses("@1e9", "unexpected 'e9' after the seconds");
	refuses("@5 ", "unexpected ' ' after the seconds");
	refuses("@99999999999999999999x", "unexpected 'x'"); /* syntax before range */
	refuses("2026-11-25T14:02:00", "has no offset");
	refuses("2026-11-25T14:02:00Zjunk", "unexpected 'junk' after the offset");
	refuses("2026-11-25T14:02:00+01:00 ", "unexpected ' ' after the offset");
	refuses("2026-11-25T14:02:00.Z", "is not RFC 3339");
	refuses("2026-11-25", "is not RFC 3339");
	refuses("2026-11-25T14:02Z", "is not RFC 3339");
	refuses("2026-11-25X14:02:00Z", "is not RFC 3339");
	refuses("26-11-25T14:02:00Z", "is not RFC 3339");
	refuses("+2026-11-25T14:02:00Z", "is not RFC 3339");
	refuses("12026-11-25T14:02:00Z", "is not RFC 3339");
	refuses(" 2026-11-25T14:02:00Z", "is not RFC 3339");
	refuses("2026-1-25T14:02:00Z", "is not RFC 3339");
	refuses("2026-11-25T14:02:00\xef\xbc\xba", "is not RFC 3339");
	/* A newline in the input never makes the message two lines (checked by refuses). */
	refuses("2026-11-25T14:02:00Z\nX", "unexpected");
	refuses("\n", "is not RFC 3339");
}

/* Every valid civil time of a wide sample agrees with the C library's timegm (where time_t reaches). */
static void test_against_timegm(void **state)
{
	uint64_t seed = 0x7157a11ce;
	int i;
	(void)state;
	for (i = 0; i < 20000; i++) {
		struct tm tm;
		char text[64], back[GW_TIME_TEXT_MAX];
		int64_t got, y = 1 + (int64_t)(tu_rand(&seed) % 9999);
		int mo = 1 + (int)(tu_rand(&seed) % 12), d = 1 + (int)(tu_rand(&seed) % 31);
		int h = (int)(tu_rand(&seed) % 24), mi = (int)(tu_rand(&seed) % 60), s = (int)(tu_rand(&seed) % 60);
		int us = (int)(tu_rand(&seed) % 1000000);
		time_t t;
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = (int)y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = s;
		t = timegm(&tm);
		snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (int)y, mo, d, h, mi, s, us);
		/* timegm normalises an invalid day into the next month: exactly what the parser must refuse. */
		if (tm.tm_mday != d) {
			refuses(text, "is not a day of");
			continue;
		}
		accepts(text, (int64_t)t * 1000000 + us);
		/* And the output form reads back as the same instant. */
		assert_int_equal(gw_time_parse(text, &got), 0);
		gw_time_format(got, back, sizeof(back));
		assert_string_equal(back, text);
	}
}

/* Durations: every unit, the largest exact unit back, and the edges the parser refuses. */
static void test_duration(void **state)
{
	static const struct {
		const char *text;
		int64_t us;
		const char *back;
	} good[] = {
		{"1ms", 1000, "1ms"},
		{"1500ms", 1500000, "1500ms"},
		{"90s", 90000000LL, "90s"},
		{"120s", 120000000LL, "2m"},
		{"90m", 5400000000LL, "90m"},
		{"12h", 43200000000LL, "12h"},
		{"48h", 172800000000LL, "2d"},
		{"7d", 604800000000LL, "7d"},
		{"007d", 604800000000LL, "7d"},
		{"36500d", GW_DURATION_MAX_US, "36500d"},
		{"876000h", GW_DURATION_MAX_US, "36500d"},
		{"3153600000000ms", GW_DURATION_MAX_US, "36500d"},
	};
	static const struct {
		const char *text, *message;
	} bad[] = {
		{"", "'' is not a duration like 7d"}, {"7", "'7' is not a duration"}, {"d", "'d' is not"},
		{"0d", "'0d' is not"},                {"0ms", "'0ms' is not"},         {"-1d", "'-1d' is not"},
		{"+1d", "'+1d' is not"},              {" 1d", "' 1d' is not"},         {"1d ", "'1d ' is not"},
		{"1 d", "'1 d' is not"},              {"1w", "'1w' is not"},           {"1D", "'1D' is not"},
		{"1us", "'1us' is not"},              {"1.5h", "'1.5h' is not"},       {"1dd", "'1dd' is not"},
		{"36501d", "'36501d' is longer than 100 years"},
		{"3153600000001ms", "longer than 100 years"},
		{"99999999999999999999s", "'99999999999999999999s' is longer than 100 years"},
		{"99999999999999999999999999999999999999d", "longer than 100 years"},
	};
	int64_t us;
	char buf[32];
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		us = 0;
		assert_int_equal(gw_duration_parse(good[i].text, &us), 0);
		assert_true(us == good[i].us);
		gw_duration_format(us, buf, sizeof(buf));
		assert_string_equal(buf, good[i].back);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		us = 42;
		tu_assert_err(gw_duration_parse(bad[i].text, &us), GW_EINVALID, bad[i].message);
		assert_true(us == 42); /* untouched on error */
	}
	tu_assert_err(gw_duration_parse(NULL, &us), GW_EINVALID, "'' is not a duration");
	gw_duration_format(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500us");
	gw_duration_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "0us");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),       cmocka_unit_test(test_calendar), cmocka_unit_test(test_clock_fields),
		cmocka_unit_test(test_leap_seconds), cmocka_unit_test(test_offsets),  cmocka_unit_test(test_range),
		cmocka_unit_test(test_syntax),       cmocka_unit_test(test_against_timegm), cmocka_unit_test(test_duration),
	};
	return tu_run_tests(tests);
}
