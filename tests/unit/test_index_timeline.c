/*
 * Unit tests for src/index/timeline.c and the chain bookkeeping of index.c:
 * planning a point-in-time restore from the index alone (spans, breaks,
 * bytes, archiver gaps, and the ref updates that decide the end state).
 */
#include "testutil.h"
#include "fixture.h"

/* A segment linked to the record before it. */
static void add_seg(gw_index *ix, const char *repo, uint64_t lsn, uint64_t base, const gw_update *u, size_t n)
{
	tu_add_segment(ix, repo, lsn, base, lsn - 1, u, n);
}

static gw_update ref_update(uint64_t lsn, const char *ref, const char *new_hex)
{
	gw_update u;
	memset(&u, 0, sizeof(u));
	u.kind = GW_UPDATE_REF;
	u.time_us = TU_AT(lsn);
	u.ref = (char *)ref;
	snprintf(u.new_oid, sizeof(u.new_oid), "%s", new_hex);
	return u;
}

static void span(gw_index *ix, const char *repo, uint64_t full, int64_t until, gw_index_span *s)
{
	int rc = gw_index_span_find(ix, repo, full, until, s);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
}

static void test_span_whole_chain(void **state)
{
	tu_fixture *f = *state;
	gw_index_span s;
	uint64_t l;
	tu_add_full(f->ix, "a.git", 1);
	for (l = 2; l <= 10; l++)
		add_seg(f->ix, "a.git", l, 1, NULL, 0);
	/* Up to LSN 6 inclusive. */
	span(f->ix, "a.git", 1, TU_AT(6), &s);
	assert_int_equal(s.last_lsn, 6);
	assert_int_equal(s.segments, 5);
	assert_int_equal(s.bytes, 100 * (2 + 3 + 4 + 5 + 6));
	assert_int_equal(s.broken_lsn, 0);
	assert_int_equal(s.last_time_us, TU_AT(6));
	/* Between two segments: the earlier one. */
	span(f->ix, "a.git", 1, TU_AT(6) + 999, &s);
	assert_int_equal(s.last_lsn, 6);
	/* Before the first segment: the full backup alone. */
	span(f->ix, "a.git", 1, TU_AT(1) + 5, &s);
	assert_int_equal(s.last_lsn, 1);
	assert_int_equal(s.segments, 0);
	assert_int_equal(s.bytes, 0);
	/* After the last. */
	span(f->ix, "a.git", 1, TU_AT(100), &s);
	assert_int_equal(s.last_lsn, 10);
	assert_int_equal(s.segments, 9);
}

static void test_span_out_of_order_and_generations(void **state)
{
	tu_fixture *f = *state;
	gw_index_span s;
	/* Rows arrive in any order (a rebuild): segments before their full backup, a hole filled later. */
	add_seg(f->ix, "a.git", 3, 1, NULL, 0);
	add_seg(f->ix, "a.git", 2, 1, NULL, 0);
	add_seg(f->ix, "a.git", 5, 1, NULL, 0);
	span(f->ix, "a.git", 1, TU_AT(5), &s);
	assert_int_equal(s.broken_lsn, 2); /* no full backup yet: LSN 2 does not link */
	tu_add_full(f->ix, "a.git", 1);
	span(f->ix, "a.git", 1, TU_AT(5), &s);
	assert_int_equal(s.broken_lsn, 4);
	assert_true(s.broken_missing);
	assert_int_equal(s.broken_after_us, TU_AT(3));
	/* Before the hole the state is provable. */
	span(f->ix, "a.git", 1, TU_AT(3), &s);
	assert_int_equal(s.broken_lsn, 0);
	assert_int_equal(s.bytes, 500);
	add_seg(f->ix, "a.git", 4, 1, NULL, 0);
	span(f->ix, "a.git", 1, TU_AT(5), &s);
	assert_int_equal(s.broken_lsn, 0);
	assert_int_equal(s.segments, 4);
	assert_int_equal(s.bytes, 200 + 300 + 400 + 500);
	/* A next generation: its full backup at 6, segments at 7..8 belong to it only. */
	tu_add_full(f->ix, "a.git", 6);
	add_seg(f->ix, "a.git", 7, 6, NULL, 0);
	add_seg(f->ix, "a.git", 8, 6, NULL, 0);
	span(f->ix, "a.git", 1, TU_AT(8), &s);
	assert_int_equal(s.last_lsn, 5);
	span(f->ix, "a.git", 6, TU_AT(8), &s);
	assert_int_equal(s.last_lsn, 8);
	assert_int_equal(s.segments, 2);
	assert_int_equal(s.bytes, 700 + 800);
	assert_int_equal(s.broken_lsn, 0);
}

static void test_span_broken_link(void **state)
{
	tu_fixture *f = *state;
	gw_index_span s;
	tu_add_full(f->ix, "a.git", 1);
	add_seg(f->ix, "a.git", 2, 1, NULL, 0);
	tu_add_segment(f->ix, "a.git", 3, 1, 77, NULL, 0); /* links to a record that is not LSN 2 */
	add_seg(f->ix, "a.git", 4, 1, NULL, 0);
	span(f->ix, "a.git", 1, TU_AT(4), &s);
	assert_int_equal(s.broken_lsn, 3);
	assert_false(s.broken_missing);
	span(f->ix, "a.git", 1, TU_AT(2), &s);
	assert_int_equal(s.broken_lsn, 0);
	/* A repository the index does not know. */
	assert_int_equal(gw_index_span_find(f->ix, "nope.git", 1, TU_AT(2), &s), GW_ENOTFOUND);
	tu_assert_msg_has("nope.git");
}

/* The lowest record above the span, of any generation: what restore checks is not owed to the time asked for. */
static void test_span_next(void **state)
{
	gw_index *ix = ((tu_fixture *)*state)->ix;
	gw_index_span s;
	tu_add_full(ix, "a.git", 1);
	add_seg(ix, "a.git", 2, 1, NULL, 0);
	add_seg(ix, "a.git", 3, 1, NULL, 0);
	/* LSN 4 (a full backup's) is lost; its segments 5 and 6 remain. */
	add_seg(ix, "a.git", 5, 4, NULL, 0);
	add_seg(ix, "a.git", 6, 4, NULL, 0);
	tu_add_full(ix, "a.git", 7);

	span(ix, "a.git", 1, TU_AT(2), &s); /* LSN 3 of the same generation is next */
	assert_int_equal(s.last_lsn, 2);
	assert_int_equal(s.next_lsn, 3);
	assert_false(s.next_full);
	assert_int_equal(s.next_base_lsn, 1);
	assert_int_equal(s.next_time_us, TU_AT(3));
	span(ix, "a.git", 1, INT64_MAX, &s); /* a hole after the span, then a segment of another generation */
	assert_int_equal(s.last_lsn, 3);
	assert_int_equal(s.next_lsn, 5);
	assert_int_equal(s.next_base_lsn, 4);
	span(ix, "a.git", 7, INT64_MAX, &s); /* nothing above */
	assert_int_equal(s.next_lsn, 0);
	/* A full backup is next. */
	tu_add_full(ix, "b.git", 1);
	tu_add_full(ix, "b.git", 2);
	span(ix, "b.git", 1, TU_AT(1), &s);
	assert_int_equal(s.next_lsn, 2);
	assert_true(s.next_full);
	assert_int_equal(s.next_time_us, TU_AT(2));
}

static int check_window(const gw_segment_record *r, void *payload)
{
	(void)payload;
	assert_int_equal(r->gap, 1);
	assert_int_equal(r->gap_from_us, TU_AT(2));
	assert_int_equal(r->gap_to_us, TU_AT(3));
	return 0;
}

static void test_gaps(void **state)
{
	tu_fixture *f = *state;
	gw_index_span s;
	gw_segment_record r;
	char key[128];
	tu_add_full(f->ix, "a.git", 1);
	add_seg(f->ix, "a.git", 2, 1, NULL, 0);
	/* LSN 3 says the archiver saw nothing between TU_AT(2) and TU_AT(3). */
	r = tu_segment_record("a.git", 3, 1, 2, key);
	r.gap = 1;
	r.gap_from_us = TU_AT(2);
	r.gap_to_us = TU_AT(3);
	assert_int_equal(gw_index_segment_add(f->ix, &r, NULL, 0), 0);
	add_seg(f->ix, "a.git", 4, 1, NULL, 0);
	/* Inside the window: the state restored is LSN 2's, and the window is reported. */
	span(f->ix, "a.git", 1, TU_AT(2) + 500, &s);
	assert_int_equal(s.last_lsn, 2);
	assert_int_equal(s.unknown_lsn, 3);
	assert_int_equal(s.unknown_from_us, TU_AT(2));
	assert_int_equal(s.unknown_to_us, TU_AT(3));
	/* Exactly at the last archived state before it: known. */
	span(f->ix, "a.git", 1, TU_AT(2), &s);
	assert_int_equal(s.unknown_lsn, 0);
	/* After it: known, and the gap lies inside the span. */
	span(f->ix, "a.git", 1, TU_AT(4), &s);
	assert_int_equal(s.unknown_lsn, 0);
	/* The record keeps its window. */
	assert_int_equal(gw_index_segment_foreach(f->ix, "a.git", 3, 3, check_window, NULL), 0);
}

static int count_gap(uint64_t lsn, int64_t from, int64_t to, void *payload)
{
	int *n = payload;
	assert_int_equal(lsn, 3);
	assert_int_equal(from, TU_AT(2));
	assert_int_equal(to, TU_AT(3));
	++*n;
	return 0;
}

static void test_gaps_foreach(void **state)
{
	tu_fixture *f = *state;
	int n = 0;
	test_gaps(state);
	assert_int_equal(gw_index_gaps_foreach(f->ix, "a.git", 2, 4, count_gap, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(gw_index_gaps_foreach(f->ix, "a.git", 4, 10, count_gap, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gw_index_gaps_foreach(f->ix, "unknown.git", 1, 10, count_gap, &n), 0);
	assert_int_equal(n, 0);
}

/* The updates that decide a.git's refs at a time, in the span (s) of its full backup at LSN 1. */
typedef struct {
	gw_index_span s;
	gw_update *u;
	size_t n;
} found;

static void updates_at(gw_index *ix, int64_t until, found *got)
{
	span(ix, "a.git", 1, until, &got->s);
	assert_int_equal(gw_index_span_updates(ix, "a.git", &got->s, until, &got->u, &got->n), 0);
}

/* The value the updates found give ref (a symbolic ref's target), or NULL. */
static const char *value_of(const found *got, const char *ref)
{
	size_t i;
	const char *v = NULL;
	for (i = 0; i < got->n; i++)
		if (got->u[i].ref && !strcmp(got->u[i].ref, ref))
			v = got->u[i].kind == GW_UPDATE_SYMREF ? got->u[i].new_target : got->u[i].new_oid;
	return v;
}

static void found_free(found *got)
{
	gw_updates_free(got->u, got->n);
}

static void test_span_updates_latest_per_ref(void **state)
{
	tu_fixture *f = *state;
	found got;
	size_t i;
	char h[8][41];
	for (i = 0; i < 8; i++)
		snprintf(h[i], sizeof(h[i]), "%040zx", i + 1);
	tu_add_full(f->ix, "a.git", 1);
	{
		gw_update u2[] = {ref_update(2, "refs/heads/main", h[0]), ref_update(2, "refs/tags/v1", h[1])};
		gw_update u3[] = {ref_update(3, "refs/heads/main", h[2])};
		gw_update u4[] = {ref_update(4, "refs/tags/v1", ""), ref_update(4, "refs/heads/side", h[3])};
		gw_update u5 = {0};
		u5.kind = GW_UPDATE_SYMREF;
		u5.time_us = TU_AT(5);
		u5.ref = "HEAD";
		u5.old_target = "refs/heads/main";
		u5.new_target = "refs/heads/side";
		add_seg(f->ix, "a.git", 2, 1, u2, 2);
		add_seg(f->ix, "a.git", 3, 1, u3, 1);
		add_seg(f->ix, "a.git", 4, 1, u4, 2);
		add_seg(f->ix, "a.git", 5, 1, &u5, 1);
	}
	updates_at(f->ix, TU_AT(3), &got);
	assert_int_equal(got.n, 2);
	assert_string_equal(value_of(&got, "refs/heads/main"), h[2]);
	assert_string_equal(value_of(&got, "refs/tags/v1"), h[1]);
	found_free(&got);

	updates_at(f->ix, TU_AT(9), &got);
	assert_int_equal(got.n, 4);
	assert_string_equal(value_of(&got, "refs/heads/main"), h[2]);
	assert_string_equal(value_of(&got, "refs/tags/v1"), ""); /* deleted */
	assert_string_equal(value_of(&got, "refs/heads/side"), h[3]);
	assert_string_equal(value_of(&got, "HEAD"), "refs/heads/side");
	/* In LSN order. */
	for (i = 1; i < got.n; i++)
		assert_true(got.u[i - 1].time_us <= got.u[i].time_us);
	found_free(&got);

	/* No segment in the span: nothing. */
	updates_at(f->ix, TU_AT(1), &got);
	assert_int_equal(got.n, 0);
	found_free(&got);
}

static void test_span_updates_deletion_voids_older(void **state)
{
	tu_fixture *f = *state;
	found got;
	gw_update u2 = ref_update(2, "refs/heads/main", "1111111111111111111111111111111111111111");
	gw_update del = {0};
	del.kind = GW_UPDATE_DELETED;
	del.time_us = TU_AT(3);
	tu_add_full(f->ix, "a.git", 1);
	add_seg(f->ix, "a.git", 2, 1, &u2, 1);
	add_seg(f->ix, "a.git", 3, 1, &del, 1);
	updates_at(f->ix, TU_AT(3), &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.u[0].kind, GW_UPDATE_DELETED);
	found_free(&got);
}

static void test_span_updates_inside_last_segment(void **state)
{
	tu_fixture *f = *state;
	found got;
	gw_update u[3] = {ref_update(2, "refs/heads/main", "1111111111111111111111111111111111111111"),
			  ref_update(2, "refs/heads/main", "2222222222222222222222222222222222222222"),
			  ref_update(2, "refs/heads/late", "3333333333333333333333333333333333333333")};
	u[1].time_us += 500;
	u[2].time_us += 600;
	tu_add_full(f->ix, "a.git", 1);
	add_seg(f->ix, "a.git", 2, 1, u, 3);
	/* Only the updates of the last segment at or before until count. */
	updates_at(f->ix, TU_AT(2) + 100, &got);
	assert_int_equal(got.s.last_lsn, 2);
	assert_int_equal(got.n, 1);
	assert_string_equal(value_of(&got, "refs/heads/main"), "1111111111111111111111111111111111111111");
	found_free(&got);
	updates_at(f->ix, TU_AT(2) + 550, &got);
	assert_int_equal(got.n, 1);
	assert_string_equal(value_of(&got, "refs/heads/main"), "2222222222222222222222222222222222222222");
	found_free(&got);
	updates_at(f->ix, TU_AT(3), &got);
	assert_int_equal(got.n, 2);
	assert_string_equal(value_of(&got, "refs/heads/late"), "3333333333333333333333333333333333333333");
	found_free(&got);
}

static void test_batch(void **state)
{
	tu_fixture *f = *state;
	gw_index_span s;
	uint64_t l;
	assert_int_equal(gw_index_batch_begin(f->ix), 0);
	assert_int_equal(gw_index_batch_begin(f->ix), GW_EINVALID);
	tu_add_full(f->ix, "a.git", 1);
	for (l = 2; l <= 1000; l++)
		add_seg(f->ix, "a.git", l, 1, NULL, 0);
	assert_int_equal(gw_index_batch_commit(f->ix), 0);
	span(f->ix, "a.git", 1, TU_AT(1000), &s);
	assert_int_equal(s.segments, 999);
	assert_int_equal(s.broken_lsn, 0);
	assert_int_equal(s.bytes, 100ULL * (1000 * 1001 / 2 - 1));
	/* Adding a record twice keeps the first. */
	tu_add_segment(f->ix, "a.git", 500, 1, 12345, NULL, 0);
	span(f->ix, "a.git", 1, TU_AT(1000), &s);
	assert_int_equal(s.broken_lsn, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_span_whole_chain, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_span_out_of_order_and_generations, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_span_broken_link, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_span_next, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_gaps, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_gaps_foreach, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_span_updates_latest_per_ref, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_span_updates_deletion_voids_older, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_span_updates_inside_last_segment, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_batch, tu_index_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
