/*
 * The progress display of backup, restore and audit (see progress.h): a
 * thread that wakes every 100 ms on a terminal (every second otherwise),
 * reads the operation's counters and the store's byte count, and redraws
 * one line on stderr when it changed. Redraws are spaced by the tick
 * measured from the last one, so neither output held in between nor a
 * thread woken late can make them closer than that.
 */
#include "cli/progress.h"
#include "util/thread.h"
#include "gitwal/io.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TICK_TTY_NS 100000000L /* ten redraws a second at most */
#define TICK_LOG_NS 1000000000L /* one line a second at most */
#define LINE_MAX_LEN 200

struct gw_progress {
	char cmd[16];
	int tty;
	gw_store *store;
	gw_progress_counters *c;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping;
	size_t shown;             /* tty: columns of the line on the screen (0: none) */
	char last[LINE_MAX_LEN];  /* the last line drawn or printed */
	struct timespec t0;
	uint64_t bytes0;          /* the store's traffic when the display started */
	/* Where the current phase (the unit changes with it) began, for the time left. */
	const char *phase_unit;
	double phase_t;
	uint64_t phase_bytes;
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static uint64_t traffic(gw_store *store)
{
	uint64_t r, w;
	gw_store_traffic(store, &r, &w);
	return r + w;
}

/* "512 B", "12.3 kB", "1.2 GB": decimal units, as the audit's "MB re-read". */
static void human_bytes(double v, const char *suffix, char *out, size_t n)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	size_t u = 0;
	while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%.0f %s%s", v, units[u], suffix);
	else
		snprintf(out, n, "%.1f %s%s", v, units[u], suffix);
}

static void human_duration(double s, char *out, size_t n)
{
	unsigned long long t = (unsigned long long)(s + 0.5);
	if (t < 60)
		snprintf(out, n, "%llus", t);
	else if (t < 3600)
		snprintf(out, n, "%llum%02llus", t / 60, t % 60);
	else
		snprintf(out, n, "%lluh%02llum", t / 3600, t / 60 % 60);
}

/*
 * The time left in this phase: the bytes still to move at the rate so far,
 * when the units begun said how many they would move (extrapolated to all
 * of them); else from the units done in the phase's seconds so far.
 */
static double time_left(uint64_t total, uint64_t started, uint64_t done, uint64_t planned, uint64_t phase_bytes,
			double bytes_per_s, double phase_s)
{
	if (!total || done >= total)
		return -1;
	if (planned && started && bytes_per_s > 0) {
		double expected = (double)planned * (double)total / (double)started;
		if (expected > (double)phase_bytes)
			return (expected - (double)phase_bytes) / bytes_per_s;
	}
	if (done && phase_s > 0)
		return phase_s * (double)(total - done) / (double)done;
	return -1;
}

static void compose(gw_progress *p, char *line, size_t n)
{
	gw_progress_counters *c = p->c;
	uint64_t total = __atomic_load_n(&c->total, __ATOMIC_ACQUIRE);
	uint64_t started = __atomic_load_n(&c->started, __ATOMIC_RELAXED);
	uint64_t done = __atomic_load_n(&c->done, __ATOMIC_RELAXED);
	uint64_t planned = __atomic_load_n(&c->planned_bytes, __ATOMIC_RELAXED);
	const char *unit = __atomic_load_n(&c->unit, __ATOMIC_RELAXED);
	uint64_t bytes = traffic(p->store) - p->bytes0, phase_bytes;
	double now = seconds_since(&p->t0), phase_s, left, bytes_per_s;
	char b[32], rate[32], eta[32];
	size_t len;

	if (unit != p->phase_unit) {
		p->phase_unit = unit;
		p->phase_t = now;
		p->phase_bytes = bytes;
	}
	phase_s = now - p->phase_t;
	phase_bytes = bytes - p->phase_bytes;
	bytes_per_s = now > 0 ? (double)bytes / now : 0.0;
	if (total)
		len = (size_t)snprintf(line, n, "gitwal %s: %llu/%llu %s", p->cmd, (unsigned long long)done,
				       (unsigned long long)total, unit ? unit : "");
	else
		len = (size_t)snprintf(line, n, "gitwal %s: %s", p->cmd, unit ? unit : "starting");
	human_bytes((double)bytes, "", b, sizeof(b));
	human_bytes(bytes_per_s, "/s", rate, sizeof(rate));
	if (len < n)
		len += (size_t)snprintf(line + len, n - len, ", %s, %s", b, rate);
	left = time_left(total, started, done, planned, phase_bytes, bytes_per_s, phase_s);
	if (left >= 0 && len < n) {
		human_duration(left, eta, sizeof(eta));
		snprintf(line + len, n - len, ", %s left", eta);
	}
}

/* stderr gone is not worth failing for: the display is dropped. */
static void write_all(const char *buf, size_t len)
{
	(void)gw_write_all(STDERR_FILENO, buf, len);
}

/* Terminal: erase the line (spaces over it, back to its start). Called with the lock held. */
static void erase(gw_progress *p)
{
	char buf[LINE_MAX_LEN + 2];
	if (!p->tty || !p->shown)
		return;
	buf[0] = '\r';
	memset(buf + 1, ' ', p->shown);
	buf[p->shown + 1] = '\r';
	write_all(buf, p->shown + 2);
	p->shown = 0;
}

/* Draw the current line if it changed (or is not on the screen). Called with the lock held. */
static void draw(gw_progress *p)
{
	char line[LINE_MAX_LEN], buf[2 * LINE_MAX_LEN + 2];
	size_t len, pad = 0;
	struct winsize ws;

	compose(p, line, sizeof(line));
	len = strlen(line);
	if (!p->tty) {
		if (strcmp(line, p->last) != 0) {
			memcpy(p->last, line, len + 1);
			line[len] = '\n';
			write_all(line, len + 1);
		}
		return;
	}
	/* Never wider than the terminal: a wrapped line cannot be rewritten with a carriage return. */
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && len >= ws.ws_col) {
		len = (size_t)ws.ws_col - 1;
		line[len] = '\0';
	}
	if (p->shown && strcmp(line, p->last) == 0)
		return;
	memcpy(p->last, line, len + 1);
	buf[0] = '\r';
	memcpy(buf + 1, line, len);
	if (p->shown > len)
		pad = p->shown - len;
	memset(buf + 1 + len, ' ', pad);
	write_all(buf, 1 + len + pad);
	p->shown = len + pad;
}

static void *progress_thread(void *arg)
{
	gw_progress *p = arg;
	long tick = p->tty ? TICK_TTY_NS : TICK_LOG_NS;
	struct timespec next;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		/* The next redraw is a whole tick after the last one, however late this wakes. */
		clock_gettime(CLOCK_MONOTONIC, &next);
		next.tv_nsec += tick;
		next.tv_sec += next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		while (!p->stopping && pthread_cond_timedwait(&p->cond, &p->lock, &next) != ETIMEDOUT)
			;
		if (p->stopping)
			break;
		draw(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

gw_progress *gw_progress_start(const char *cmd, gw_progress_mode mode, gw_store *store,
			       gw_progress_counters *counters)
{
	gw_progress *p;
	pthread_condattr_t attr;
	int tty = isatty(STDERR_FILENO);

	if (mode == GW_PROGRESS_QUIET || (mode == GW_PROGRESS_AUTO && !tty) || !store || !counters)
		return NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	snprintf(p->cmd, sizeof(p->cmd), "%s", cmd);
	p->tty = tty;
	p->store = store;
	p->c = counters;
	p->phase_unit = __atomic_load_n(&counters->unit, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	p->bytes0 = traffic(store);
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	/* At once, so even a short run shows where it stands. */
	draw(p);
	if (gw_thread_create(&p->thread, progress_thread, p) != 0) {
		erase(p);
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

void gw_progress_hold(gw_progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	erase(p);
}

void gw_progress_release(gw_progress *p)
{
	if (p)
		pthread_mutex_unlock(&p->lock);
}

void gw_progress_stop(gw_progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->tty)
		erase(p);
	else
		draw(p); /* the totals, for the log */
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
