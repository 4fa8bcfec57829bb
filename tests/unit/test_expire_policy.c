/*
 * The retention policy (src/expire/policy.c): what is kept and what only
 * serves times before the window, on hand-made histories: no full backup
 * before the window, a window over everything, gaps in the LSNs, full
 * backups whose times do not follow their LSNs, keep-full, and deleted
 * repositories (kept for the window after their deletion, then whole).
 */
#include "testutil.h"
#include "gitwal/expire.h"

#define S 1000000LL /* a second in microseconds */

static gw_expire_plan plan(const gw_expire_full *fulls, size_t n, uint64_t first, uint64_t last, int64_t now_s,
			   int64_t within_s, unsigned keep_full)
{
	gw_expire_input in = {fulls, n, first, last, 0, 0};
	gw_expire_policy_opts o = {now_s * S, within_s * S, keep_full};
	gw_expire_plan p;
	assert_int_equal(gw_expire_policy(&in, &o, &p), 0);
	return p;
}

/* Full backups at LSNs 1 (t=100), 5 (t=200), 9 (t=300); segments up to LSN 12 (t=350). */
static const gw_expire_full history[] = {{1, 100 * S}, {5, 200 * S}, {9, 300 * S}};

static void test_cut_at_newest_full_before_window(void **state)
{
	/* Window [250, 400]: the full at 5 (t=200) serves 250..300; 1..4 only serve earlier times. */
	gw_expire_plan p = plan(history, 3, 1, 12, 400, 150, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_PREFIX);
	assert_int_equal(p.first_lsn, 1);
	assert_int_equal(p.last_lsn, 4);
	assert_int_equal(p.kept_lsn, 5);
	assert_true(p.kept_us == 200 * S);
}

static void test_window_start_on_a_full(void **state)
{
	/* Window starts exactly at t=300: the full at 9 is "at or before" it. */
	gw_expire_plan p = plan(history, 3, 1, 12, 400, 100, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_PREFIX);
	assert_int_equal(p.last_lsn, 8);
	assert_int_equal(p.kept_lsn, 9);
}

static void test_window_covers_everything(void **state)
{
	gw_expire_plan p = plan(history, 3, 1, 12, 400, 1000, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	assert_int_equal(p.kept_lsn, 0);
	/* The window reaching before the epoch, and to the start of time. */
	p = plan(history, 3, 1, 12, 400, 400, 0);
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	{
		gw_expire_input in = {history, 3, 1, 12, 0, 0};
		gw_expire_policy_opts o = {INT64_MIN + 5, 10, 0};
		assert_int_equal(gw_expire_policy(&in, &o, &p), 0);
		assert_int_equal(p.action, GW_EXPIRE_KEEP);
	}
}

static void test_no_full_before_window(void **state)
{
	/* Window [150, 160] with the first full at t=200: keep everything. */
	static const gw_expire_full late[] = {{3, 200 * S}, {7, 300 * S}};
	gw_expire_plan p = plan(late, 2, 1, 9, 160, 10, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	/* No full backup at all (segments of a lost generation): keep. */
	p = plan(NULL, 0, 1, 9, 1000, 10, 0);
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	/* Nothing recorded. */
	p = plan(NULL, 0, 0, 0, 1000, 10, 0);
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
}

static void test_already_expired(void **state)
{
	/* An earlier run left LSN 5 as the first record: nothing below the cut remains. */
	gw_expire_plan p = plan(history + 1, 2, 5, 12, 400, 150, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	assert_int_equal(p.kept_lsn, 5);
}

static void test_gaps(void **state)
{
	/* LSNs 2..6 lost and the first record a full at 7: the cut still comes from full backups only. */
	static const gw_expire_full gappy[] = {{1, 100 * S}, {7, 150 * S}, {20, 300 * S}};
	gw_expire_plan p = plan(gappy, 3, 1, 25, 400, 200, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_PREFIX);
	assert_int_equal(p.first_lsn, 1);
	assert_int_equal(p.last_lsn, 6);
	assert_int_equal(p.kept_lsn, 7);
}

static void test_times_not_following_lsns(void **state)
{
	/*
	 * A full backup at LSN 4 stamped t=260, after the window's start (250),
	 * though LSN 5's is t=200: restore --until 260 would choose LSN 4, so it
	 * is kept, with everything above it.
	 */
	static const gw_expire_full odd[] = {{1, 100 * S}, {4, 260 * S}, {5, 200 * S}, {9, 300 * S}};
	gw_expire_plan p = plan(odd, 4, 1, 12, 400, 150, 0);
	(void)state;
	assert_int_equal(p.action, GW_EXPIRE_PREFIX);
	assert_int_equal(p.last_lsn, 3);
	assert_int_equal(p.kept_lsn, 4);
	/* Two full backups with the window's start as their time: the higher LSN is the one restore picks. */
	{
		static const gw_expire_full tie[] = {{1, 100 * S}, {3, 250 * S}, {6, 250 * S}};
		p = plan(tie, 3, 1, 8, 400, 150, 0);
		assert_int_equal(p.kept_lsn, 6);
		assert_int_equal(p.last_lsn, 5);
	}
}

static void test_keep_full(void **state)
{
	gw_expire_plan p = plan(history, 3, 1, 12, 400, 50, 2);
	(void)state;
	/* The window alone would keep from LSN 9; two newest fulls: from 5. */
	assert_int_equal(p.action, GW_EXPIRE_PREFIX);
	assert_int_equal(p.last_lsn, 4);
	assert_int_equal(p.kept_lsn, 5);
	/* More than there are: keep everything. */
	p = plan(history, 3, 1, 12, 400, 50, 10);
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	assert_int_equal(p.kept_lsn, 1);
	/* Fewer than the window keeps: the window decides. */
	p = plan(history, 3, 1, 12, 400, 150, 1);
	assert_int_equal(p.kept_lsn, 5);
}

static void test_deleted_repository(void **state)
{
	gw_expire_input in = {history, 3, 1, 13, 1, 360 * S};
	gw_expire_policy_opts o = {400 * S, 150 * S, 3};
	gw_expire_plan p;
	(void)state;
	/* Deleted at 360, inside the window [250, 400]: the usual cut (here keep-full 3 keeps it all). */
	assert_int_equal(gw_expire_policy(&in, &o, &p), 0);
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
	o.keep_full = 0;
	assert_int_equal(gw_expire_policy(&in, &o, &p), 0);
	assert_int_equal(p.action, GW_EXPIRE_PREFIX);
	assert_int_equal(p.last_lsn, 4);
	/* The window's start passed its deletion: all of it, whatever keep-full says. */
	o.now_us = 600 * S;
	o.keep_full = 3;
	assert_int_equal(gw_expire_policy(&in, &o, &p), 0);
	assert_int_equal(p.action, GW_EXPIRE_WHOLE);
	assert_int_equal(p.first_lsn, 1);
	assert_int_equal(p.last_lsn, 13);
	assert_true(p.deleted_us == 360 * S);
	/* Deleted exactly at the window's start: still inside. */
	o.now_us = 510 * S;
	assert_int_equal(gw_expire_policy(&in, &o, &p), 0);
	assert_int_equal(p.action, GW_EXPIRE_KEEP);
}

static void test_bad_window(void **state)
{
	gw_expire_input in = {history, 3, 1, 12, 0, 0};
	gw_expire_policy_opts o = {400 * S, -1, 0};
	gw_expire_plan p;
	(void)state;
	tu_assert_err(gw_expire_policy(&in, &o, &p), GW_EINVALID, "negative");
}

static void test_duration(void **state)
{
	int64_t us;
	char buf[32];
	(void)state;
	assert_int_equal(gw_expire_duration_parse("7d", &us), 0);
	assert_true(us == 7 * 86400 * S);
	assert_int_equal(gw_expire_duration_parse("12h", &us), 0);
	assert_true(us == 12 * 3600 * S);
	assert_int_equal(gw_expire_duration_parse("90m", &us), 0);
	assert_int_equal(gw_expire_duration_parse("3s", &us), 0);
	assert_true(us == 3 * S);
	assert_int_equal(gw_expire_duration_parse("1500ms", &us), 0);
	gw_expire_duration_format(us, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
	gw_expire_duration_format(7 * 86400 * S, buf, sizeof(buf));
	assert_string_equal(buf, "7d");
	gw_expire_duration_format(90 * 60 * S, buf, sizeof(buf));
	assert_string_equal(buf, "90m");
	tu_assert_err(gw_expire_duration_parse("7", &us), GW_EINVALID, "'7' is not a duration");
	tu_assert_err(gw_expire_duration_parse("0d", &us), GW_EINVALID, "'0d'");
	tu_assert_err(gw_expire_duration_parse("-1d", &us), GW_EINVALID, "'-1d'");
	tu_assert_err(gw_expire_duration_parse("+1d", &us), GW_EINVALID, "'+1d'");
	tu_assert_err(gw_expire_duration_parse("1w", &us), GW_EINVALID, "'1w'");
	tu_assert_err(gw_expire_duration_parse("1d ", &us), GW_EINVALID, "'1d '");
	tu_assert_err(gw_expire_duration_parse("", &us), GW_EINVALID, "''");
	tu_assert_err(gw_expire_duration_parse("36501d", &us), GW_EINVALID, "100 years");
	tu_assert_err(gw_expire_duration_parse("99999999999999999999s", &us), GW_EINVALID, "99999999999999999999s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut_at_newest_full_before_window),
		cmocka_unit_test(test_window_start_on_a_full),
		cmocka_unit_test(test_window_covers_everything),
		cmocka_unit_test(test_no_full_before_window),
		cmocka_unit_test(test_already_expired),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_times_not_following_lsns),
		cmocka_unit_test(test_keep_full),
		cmocka_unit_test(test_deleted_repository),
		cmocka_unit_test(test_bad_window),
		cmocka_unit_test(test_duration),
	};
	return tu_run_tests(tests);
}
