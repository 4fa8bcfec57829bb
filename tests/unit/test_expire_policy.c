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
#define ANY (-1)      /* a field of the plan the case does not check */

/* One history and policy, and what the plan must say. */
typedef struct {
	const char *what;
	gw_expire_input in;
	gw_expire_policy_opts opts;
	struct {
		int64_t action, first_lsn, last_lsn, kept_lsn, kept_us, deleted_us;
	} want;
} policy_case;

/* A plan's field against the case's (unless ANY), naming the case on failure. */
#define check_field(c, got, wanted)                                                                           \
	do {                                                                                                   \
		if ((wanted) != ANY && (int64_t)(got) != (wanted)) {                                           \
			print_error("%s: %s is %lld, want %lld\n", (c)->what, #got, (long long)(got),        \
				    (long long)(wanted));                                                      \
			fail();                                                                                \
		}                                                                                              \
	} while (0)

static void check(const policy_case *c, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++, c++) {
		gw_expire_plan p;
		assert_int_equal(gw_expire_policy(&c->in, &c->opts, &p), 0);
		check_field(c, p.action, c->want.action);
		check_field(c, p.first_lsn, c->want.first_lsn);
		check_field(c, p.last_lsn, c->want.last_lsn);
		check_field(c, p.kept_lsn, c->want.kept_lsn);
		check_field(c, p.kept_us, c->want.kept_us);
		check_field(c, p.deleted_us, c->want.deleted_us);
	}
}
#define CHECK(cases) check(cases, sizeof(cases) / sizeof(cases[0]))

/* Full backups at LSNs 1 (t=100), 5 (t=200), 9 (t=300); segments up to LSN 12 (t=350). */
static const gw_expire_full history[] = {{1, 100 * S}, {5, 200 * S}, {9, 300 * S}};
#define HISTORY {history, 3, 1, 12, 0, 0, 0}

static void test_cut_at_newest_full_before_window(void **state)
{
	static const policy_case cases[] = {
		{"window [250, 400]: the full at 5 (t=200) serves 250..300; 1..4 only serve earlier times",
		 HISTORY, {400 * S, 150 * S, 0}, {GW_EXPIRE_PREFIX, 1, 4, 5, 200 * S, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static void test_window_start_on_a_full(void **state)
{
	static const policy_case cases[] = {
		{"window starts exactly at t=300: the full at 9 is \"at or before\" it", HISTORY,
		 {400 * S, 100 * S, 0}, {GW_EXPIRE_PREFIX, ANY, 8, 9, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static void test_window_covers_everything(void **state)
{
	static const policy_case cases[] = {
		{"window over everything", HISTORY, {400 * S, 1000 * S, 0}, {GW_EXPIRE_KEEP, ANY, ANY, 0, ANY, ANY}},
		{"window reaching before the epoch", HISTORY, {400 * S, 400 * S, 0},
		 {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
		{"window to the start of time", HISTORY, {INT64_MIN + 5, 10, 0}, {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static const gw_expire_full late[] = {{3, 200 * S}, {7, 300 * S}};

static void test_no_full_before_window(void **state)
{
	static const policy_case cases[] = {
		{"window [150, 160] with the first full at t=200: keep everything", {late, 2, 1, 9, 0, 0, 0},
		 {160 * S, 10 * S, 0}, {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
		{"no full backup at all (segments of a lost generation): keep", {NULL, 0, 1, 9, 0, 0, 0},
		 {1000 * S, 10 * S, 0}, {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
		{"nothing recorded", {NULL, 0, 0, 0, 0, 0, 0}, {1000 * S, 10 * S, 0}, {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static void test_already_expired(void **state)
{
	static const policy_case cases[] = {
		{"an earlier run left LSN 5 as the first record: nothing below the cut remains",
		 {history + 1, 2, 5, 12, 0, 0, 0}, {400 * S, 150 * S, 0}, {GW_EXPIRE_KEEP, ANY, ANY, 5, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static const gw_expire_full gappy[] = {{1, 100 * S}, {7, 150 * S}, {20, 300 * S}};

static void test_gaps(void **state)
{
	static const policy_case cases[] = {
		{"LSNs 2..6 lost and the first record a full at 7: the cut still comes from full backups only",
		 {gappy, 3, 1, 25, 0, 0, 0}, {400 * S, 200 * S, 0}, {GW_EXPIRE_PREFIX, 1, 6, 7, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

/*
 * A full backup at LSN 4 stamped t=260, after the window's start (250),
 * though LSN 5's is t=200: restore --until 260 would choose LSN 4, so it is
 * kept, with everything above it. And two full backups with the window's
 * start as their time: the higher LSN is the one restore picks.
 */
static const gw_expire_full odd[] = {{1, 100 * S}, {4, 260 * S}, {5, 200 * S}, {9, 300 * S}};
static const gw_expire_full tie[] = {{1, 100 * S}, {3, 250 * S}, {6, 250 * S}};

static void test_times_not_following_lsns(void **state)
{
	static const policy_case cases[] = {
		{"a full at LSN 4 after the window's start", {odd, 4, 1, 12, 0, 0, 0}, {400 * S, 150 * S, 0},
		 {GW_EXPIRE_PREFIX, ANY, 3, 4, ANY, ANY}},
		{"two fulls at the window's start", {tie, 3, 1, 8, 0, 0, 0}, {400 * S, 150 * S, 0},
		 {ANY, ANY, 5, 6, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static void test_keep_full(void **state)
{
	static const policy_case cases[] = {
		{"the window alone would keep from LSN 9; two newest fulls: from 5", HISTORY, {400 * S, 50 * S, 2},
		 {GW_EXPIRE_PREFIX, ANY, 4, 5, ANY, ANY}},
		{"more full backups to keep than there are: keep everything", HISTORY, {400 * S, 50 * S, 10},
		 {GW_EXPIRE_KEEP, ANY, ANY, 1, ANY, ANY}},
		{"fewer than the window keeps: the window decides", HISTORY, {400 * S, 150 * S, 1},
		 {ANY, ANY, ANY, 5, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

/* Deleted at t=360, after LSN 13. */
#define DELETED {history, 3, 1, 13, 1, 360 * S, 0}

static void test_deleted_repository(void **state)
{
	static const policy_case cases[] = {
		{"deleted inside the window [250, 400]: the usual cut (keep-full 3 keeps it all)", DELETED,
		 {400 * S, 150 * S, 3}, {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
		{"deleted inside the window, keep-full 0", DELETED, {400 * S, 150 * S, 0},
		 {GW_EXPIRE_PREFIX, ANY, 4, ANY, ANY, ANY}},
		{"the window's start passed its deletion: all of it, whatever keep-full says", DELETED,
		 {600 * S, 150 * S, 3}, {GW_EXPIRE_WHOLE, 1, 13, ANY, ANY, 360 * S}},
		{"deleted exactly at the window's start: still inside", DELETED, {510 * S, 150 * S, 3},
		 {GW_EXPIRE_KEEP, ANY, ANY, ANY, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

/* A pool whose members' kept full backups name its generation at LSN 1 or 5 (DESIGN.md 19). */
#define PINNED(lsn) {history, 3, 1, 12, 0, 0, lsn}
#define PINNED_DELETED(lsn) {history, 3, 1, 13, 1, 360 * S, lsn}

static void test_pool_pinned(void **state)
{
	static const policy_case cases[] = {
		{"the window keeps from 9; a member names 5: kept from 5", PINNED(5), {400 * S, 50 * S, 0},
		 {GW_EXPIRE_PREFIX, 1, 4, 5, 200 * S, ANY}},
		{"a member names 1: everything kept", PINNED(1), {400 * S, 50 * S, 0},
		 {GW_EXPIRE_KEEP, ANY, ANY, 1, ANY, ANY}},
		{"a member names 3 (expired since): its generation's next full, 5", PINNED(3), {400 * S, 50 * S, 0},
		 {GW_EXPIRE_PREFIX, 1, 4, 5, ANY, ANY}},
		{"a member names 9, above the cut at 5: the window decides", PINNED(9), {400 * S, 150 * S, 0},
		 {GW_EXPIRE_PREFIX, 1, 4, 5, ANY, ANY}},
		{"deleted before the window, still named by a member: not removed whole", PINNED_DELETED(5),
		 {600 * S, 150 * S, 0}, {GW_EXPIRE_PREFIX, 1, 4, 5, ANY, ANY}},
	};
	(void)state;
	CHECK(cases);
}

static void test_bad_window(void **state)
{
	gw_expire_input in = HISTORY;
	gw_expire_policy_opts o = {400 * S, -1, 0};
	gw_expire_plan p;
	(void)state;
	tu_assert_err(gw_expire_policy(&in, &o, &p), GW_EINVALID, "negative");
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
		cmocka_unit_test(test_pool_pinned),
		cmocka_unit_test(test_bad_window),
	};
	return tu_run_tests(tests);
}
