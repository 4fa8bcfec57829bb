/*
 * Owners of temporary names (see owner.h): this process's tag, and the
 * verdict on a leftover's owner.
 */
#include "util/owner.h"
#include "gitwal/array.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static char my_host[65], my_boot[33], my_tag[GW_OWNER_TAG_MAX + 1];
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;

/* Field 22 of /proc/PID/stat (start time, clock ticks since boot); 0 when unreadable. */
static unsigned long long proc_start(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	size_t n;
	int field;
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name is in parentheses and may hold anything: fields start after the last ')'. */
	if (!(p = strrchr(buf, ')')))
		return 0;
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

static void tag_init(void)
{
	char raw[256] = "";
	size_t i, j = 0;
	FILE *f;
	if (gethostname(raw, sizeof(raw) - 1) < 0 || !raw[0])
		snprintf(raw, sizeof(raw), "localhost");
	for (i = 0; raw[i] && i < sizeof(my_host) - 1; i++)
		my_host[i] = (isalnum((unsigned char)raw[i]) || raw[i] == '-') ? raw[i] : '_';
	my_host[i] = '\0';
	raw[0] = '\0';
	if ((f = fopen("/proc/sys/kernel/random/boot_id", "re"))) {
		if (!fgets(raw, sizeof(raw), f))
			raw[0] = '\0';
		fclose(f);
	}
	for (i = 0; raw[i] && j < 32; i++)
		if (isxdigit((unsigned char)raw[i]))
			my_boot[j++] = (char)tolower((unsigned char)raw[i]);
	if (j < 32)
		memset(my_boot, '0', j = 32); /* unknown: every name of this host compares by pid alone */
	my_boot[j] = '\0';
	snprintf(my_tag, sizeof(my_tag), "%s.%s.%ld.%llu", my_host, my_boot, (long)getpid(),
		 proc_start((long)getpid()));
}

const char *gw_owner_tag(void)
{
	pthread_once(&tag_once, tag_init);
	return my_tag;
}

static int all_of(const char *s, size_t n, int (*ok)(int))
{
	size_t i;
	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (!ok((unsigned char)s[i]))
			return 0;
	return 1;
}

static int host_char(int c)
{
	return isalnum(c) || c == '-' || c == '_';
}

/* Split off the field after the last '.' before *end: its start and length. */
static int last_field(const char *begin, const char **end, const char **field, size_t *len)
{
	const char *p = *end;
	while (p > begin && p[-1] != '.')
		p--;
	if (p == begin)
		return -1;
	*field = p;
	*len = (size_t)(*end - p);
	*end = p - 1; /* at the '.' */
	return 0;
}

int gw_owner_judge(const char *name, const char *lead, int64_t mtime, gw_owner_verdict *out)
{
	const char *rest, *end, *f[5];
	size_t len[5], n;
	char host[65], boot[33];
	long pid;
	unsigned long long start;
	int i, tagged = 1;

	memset(out, 0, sizeof(*out));
	if (strncmp(name, lead, strlen(lead)) != 0)
		return -1;
	gw_owner_tag();
	rest = name + strlen(lead);
	end = rest + strlen(rest);
	/* From the right: n, start, pid, boot, host. */
	for (i = 0; i < 5 && tagged; i++)
		tagged = last_field(rest, &end, &f[i], &len[i]) == 0;
	tagged = tagged && all_of(f[0], len[0], isdigit) && all_of(f[1], len[1], isdigit) && len[1] < 20 &&
		 all_of(f[2], len[2], isdigit) && len[2] < 10 && len[3] == 32 && all_of(f[3], 32, isxdigit) &&
		 len[4] < sizeof(host) && all_of(f[4], len[4], host_char);
	n = tagged ? (size_t)(end - rest) : strlen(rest);
	snprintf(out->what, sizeof(out->what), "%.*s", (int)n, rest);
	if (!tagged) {
		out->state = GW_OWNER_UNKNOWN;
		snprintf(out->owner, sizeof(out->owner), "an unknown writer (no owner in the name)");
	} else {
		snprintf(host, sizeof(host), "%.*s", (int)len[4], f[4]);
		snprintf(boot, sizeof(boot), "%.*s", 32, f[3]);
		pid = strtol(f[2], NULL, 10);
		start = strtoull(f[1], NULL, 10);
		if (strcmp(host, my_host) != 0) {
			out->state = GW_OWNER_UNKNOWN;
			snprintf(out->owner, sizeof(out->owner), "pid %ld on host %s (another host: whether it runs is unknown)",
				 pid, host);
		} else if (strcasecmp(boot, my_boot) != 0) {
			out->state = GW_OWNER_DEAD;
			snprintf(out->owner, sizeof(out->owner), "pid %ld on this host, before its last reboot", pid);
		} else if (start ? proc_start(pid) == start : (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
			/* Without a start time (no /proc when it was named), a pid that exists may be reused: keep it. */
			out->state = GW_OWNER_ALIVE;
			snprintf(out->owner, sizeof(out->owner), "pid %ld on this host, running", pid);
		} else {
			out->state = GW_OWNER_DEAD;
			snprintf(out->owner, sizeof(out->owner), "pid %ld on this host, gone", pid);
		}
	}
	out->removable = out->state == GW_OWNER_DEAD ||
			 (out->state == GW_OWNER_UNKNOWN && (int64_t)time(NULL) - mtime >= GW_OWNER_STALE_SECONDS);
	return 0;
}

int gw_owner_clear_dead(const char *dir, const char *lead, int (*remove_tree)(const char *path))
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int removed = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		gw_owner_verdict v;
		struct stat sb;
		char *path;
		if (strncmp(de->d_name, lead, strlen(lead)) != 0 ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !(S_ISREG(sb.st_mode) || (S_ISDIR(sb.st_mode) && remove_tree)) ||
		    gw_owner_judge(de->d_name, lead, sb.st_mtime, &v) < 0 || !v.removable)
			continue;
		if (S_ISREG(sb.st_mode)) {
			removed += unlinkat(dirfd(d), de->d_name, 0) == 0;
		} else if (asprintf(&path, "%s/%s", dir, de->d_name) >= 0) {
			removed += remove_tree(path) == 0;
			free(path);
		}
	}
	closedir(d);
	return removed;
}

void gw_owner_cleared_dispose(gw_owner_cleared *c)
{
	size_t i;
	for (i = 0; i < c->n; i++)
		free(c->dirs[i]);
	free(c->dirs);
	c->dirs = NULL;
	c->n = c->cap = 0;
}

int gw_owner_cleared_add(gw_owner_cleared *c, const char *s)
{
	size_t lo = 0, hi, mid;
	int cmp = 1, rc = 0;
	char *copy;
	pthread_mutex_lock(&c->lock);
	for (hi = c->n; lo < hi && cmp;) {
		mid = (lo + hi) / 2;
		if ((cmp = strcmp(c->dirs[mid], s)) < 0)
			lo = mid + 1;
		else if (cmp > 0)
			hi = mid;
	}
	if (cmp && (GW_ARRAY_RESERVE(c->dirs, c->cap, c->n + 1) < 0 || !(copy = strdup(s)))) {
		rc = -1;
	} else if (cmp) {
		memmove(c->dirs + lo + 1, c->dirs + lo, (c->n - lo) * sizeof(*c->dirs));
		c->dirs[lo] = copy;
		c->n++;
		rc = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int gw_owner_clear_dead_once(gw_owner_cleared *c, const char *dir, const char *lead,
			     int (*remove_tree)(const char *path))
{
	return gw_owner_cleared_add(c, dir) == 1 ? gw_owner_clear_dead(dir, lead, remove_tree) : 0;
}
