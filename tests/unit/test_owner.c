/* Unit tests for src/util/owner.c: the owner tag of temporary names and the verdict on a leftover's owner. */
#include "testutil.h"

#include "util/owner.h"

#include <sys/wait.h>
#include <time.h>

/* This process's tag split into host, boot, pid and start. */
typedef struct {
	char host[80], boot[40];
	long pid;
	unsigned long long start;
} tag_parts;

static void my_parts(tag_parts *t)
{
	const char *tag = gw_owner_tag();
	assert_int_equal(sscanf(tag, "%79[^.].%39[^.].%ld.%llu", t->host, t->boot, &t->pid, &t->start), 4);
	assert_int_equal(t->pid, (long)getpid());
	assert_int_equal(strlen(t->boot), 32);
	assert_true(t->start > 0); /* /proc is there on the test machines */
}

/* A pid that ran and is gone (reaped). */
static long dead_pid(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return (long)pid;
}

static gw_owner_verdict judge(const char *name, int64_t mtime)
{
	gw_owner_verdict v;
	assert_int_equal(gw_owner_judge(name, ".tmp.", mtime, &v), 0);
	return v;
}

static void test_tag_shape(void **state)
{
	tag_parts t;
	const char *p;
	(void)state;
	my_parts(&t);
	assert_true(strlen(gw_owner_tag()) <= GW_OWNER_TAG_MAX);
	assert_ptr_equal(gw_owner_tag(), gw_owner_tag()); /* computed once */
	/* The host part has no '.' or '/' of its own: names parse from the right. */
	for (p = t.host; *p; p++)
		assert_true(*p != '.' && *p != '/');
}

static void test_verdicts(void **state)
{
	int64_t now = (int64_t)time(NULL), old = now - GW_OWNER_STALE_SECONDS - 60;
	char name[512], other_boot[40];
	gw_owner_verdict v;
	tag_parts t;
	(void)state;
	my_parts(&t);

	/* This very process: alive, whatever the age; the key's name may hold dots. */
	snprintf(name, sizeof(name), ".tmp.00000000000000000001.full.bundle.%s.7", gw_owner_tag());
	v = judge(name, old);
	assert_int_equal(v.state, GW_OWNER_ALIVE);
	assert_false(v.removable);
	assert_string_equal(v.what, "00000000000000000001.full.bundle");
	assert_non_null(strstr(v.owner, "running"));

	/* A pid that is gone: dead at once. */
	snprintf(name, sizeof(name), ".tmp.k.%s.%s.%ld.%llu.1", t.host, t.boot, dead_pid(), t.start);
	v = judge(name, now);
	assert_int_equal(v.state, GW_OWNER_DEAD);
	assert_true(v.removable);
	assert_string_equal(v.what, "k");
	assert_non_null(strstr(v.owner, "gone"));

	/* Pid reuse: this pid, but a process that started at another time. */
	snprintf(name, sizeof(name), ".tmp.k.%s.%s.%ld.%llu.1", t.host, t.boot, t.pid, t.start + 1);
	assert_int_equal(judge(name, now).state, GW_OWNER_DEAD);

	/* This host before a reboot: dead, even with a pid that runs now. */
	snprintf(other_boot, sizeof(other_boot), "%s", t.boot);
	other_boot[0] = other_boot[0] == 'a' ? 'b' : 'a';
	snprintf(name, sizeof(name), ".tmp.k.%s.%s.%ld.%llu.1", t.host, other_boot, t.pid, t.start);
	v = judge(name, now);
	assert_int_equal(v.state, GW_OWNER_DEAD);
	assert_non_null(strstr(v.owner, "reboot"));

	/* Another host: unknown; removable only once untouched for the stale age. */
	snprintf(name, sizeof(name), ".tmp.k.other-host_x.%s.%ld.%llu.1", t.boot, t.pid, t.start);
	v = judge(name, now);
	assert_int_equal(v.state, GW_OWNER_UNKNOWN);
	assert_false(v.removable);
	assert_non_null(strstr(v.owner, "other-host_x"));
	assert_true(judge(name, old).removable);

	/* No owner in the name (the format before owners): the same as another host. */
	v = judge(".tmp.visible.1.2.3", now);
	assert_int_equal(v.state, GW_OWNER_UNKNOWN);
	assert_false(v.removable);
	assert_string_equal(v.what, "visible.1.2.3");
	assert_true(judge(".tmp.visible.1.2.3", old).removable);
	/* Malformed owner fields are no owner. */
	snprintf(name, sizeof(name), ".tmp.k.%s.nothex.%ld.%llu.1", t.host, t.pid, t.start);
	assert_int_equal(judge(name, now).state, GW_OWNER_UNKNOWN);
	assert_int_equal(judge(".tmp.", now).state, GW_OWNER_UNKNOWN);

	/* Another lead: not judged. */
	assert_int_equal(gw_owner_judge("00000000000000000001.seg", ".tmp.", now, &v), -1);
	snprintf(name, sizeof(name), ".gitwal-restore.a.git.%s.3", gw_owner_tag());
	assert_int_equal(gw_owner_judge(name, ".gitwal-restore.", now, &v), 0);
	assert_int_equal(v.state, GW_OWNER_ALIVE);
	assert_string_equal(v.what, "a.git");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_shape),
		cmocka_unit_test(test_verdicts),
	};
	return tu_run_tests(tests);
}
