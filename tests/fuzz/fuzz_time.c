/*
 * libFuzzer target: the parser of user-given times (gw_time_parse) on
 * arbitrary strings. Whatever it accepts lies in the documented range and
 * reads back as the same instant from its output form and from its
 * @seconds form; whatever it refuses gets GW_EINVALID and a one-line message
 * naming the input. UBSan in the fuzz build catches any overflow.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gitwal/error.h"
#include "gitwal/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), text[GW_TIME_TEXT_MAX], unix_text[64];
	int64_t t = 0, back = 0, secs, us;
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0'; /* the string ends at the first NUL */

	rc = gw_time_parse(s, &t);
	if (rc == 0) {
		if (t < GW_TIME_MIN_US || t > GW_TIME_MAX_US)
			abort();
		gw_time_format(t, text, sizeof(text));
		if (gw_time_parse(text, &back) != 0 || back != t)
			abort();
		/* The same instant as @seconds.fraction, the fraction counting forward from the second. */
		secs = t / 1000000;
		us = t % 1000000;
		if (us < 0) {
			us += 1000000;
			secs--;
		}
		if (secs < 0 && us) /* -1.5 s is "@-1.5": the sign covers the fraction */
			snprintf(unix_text, sizeof(unix_text), "@-%lld.%06lld", -(long long)secs - 1, 1000000 - (long long)us);
		else
			snprintf(unix_text, sizeof(unix_text), "@%lld.%06lld", (long long)secs, (long long)us);
		if (gw_time_parse(unix_text, &back) != 0 || back != t)
			abort();
	} else {
		/* A small prefix of the input is enough to find it in the message. */
		char named[24];
		size_t i, n = size < 8 ? size : 8;
		if (rc != GW_EINVALID || strchr(gw_error_message(), '\n'))
			abort();
		snprintf(named, sizeof(named), "time '");
		for (i = 0; i < n && s[i]; i++)
			named[6 + i] = s[i] == '\n' || s[i] == '\r' ? ' ' : s[i];
		named[6 + i] = '\0';
		if (!strstr(gw_error_message(), named))
			abort();
	}
	free(s);
	return 0;
}
