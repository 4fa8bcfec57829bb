/*
 * gitwal archive: the always-on archiver. Watches the root with inotify and
 * turns every change into a log segment within a fraction of a second; takes
 * full backups by policy; reconciles periodically as a safety net. With
 * --once: archive everything pending and exit (for cron and tests).
 */
#include "cli/cli.h"
#include "gitwal/archive.h"
#include "gitwal/error.h"
#include "gitwal/expire.h"
#include "gitwal/time.h"
#include "gitwal/fs.h"
#include "gitwal/metrics.h"
#include "gitwal/watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile int stop_requested; /* set by the signal handler; read by long scans too */
/*
 * Written by the signal handler too, and polled by the service loop: a
 * signal arriving after the loop checked stop_requested and before it
 * entered poll() still wakes it (no sleep until the next timeout).
 */
static int stop_fd = -1;

static void on_signal(int sig)
{
	uint64_t one = 1;
	ssize_t n;
	(void)sig;
	stop_requested = 1;
	if (stop_fd >= 0)
		n = write(stop_fd, &one, sizeof(one));
	(void)n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall-clock time of an event first seen at monotonic first_ms. */
static int64_t event_time_us(uint64_t first_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - (mono_ms() - (int64_t)first_ms) * 1000;
}

static void update_watch_metrics(gw_metrics_archiver *m, gw_watch *w)
{
	struct gw_watch_stats ws;
	gw_watch_stats(w, &ws);
	gw_metrics_gauge_set(m->watches, (int64_t)ws.watches);
}

/*
 * A path left unwatched is polled until gw_watch_rescan attaches it; the log
 * says why, and for the usual cause (the per-user watch limit, shared by
 * every inotify user of the account) which sysctl to raise and its value.
 */
static void log_degraded(const gw_watch *w, const char *path)
{
	int err = gw_watch_last_failure(w);
	long limit = -1;
	FILE *f;

	if (err != ENOSPC) {
		fprintf(stderr, "ts=now event=watch_degraded path=%s reason=\"%s\"\n", path,
			err ? strerror(err) : "cannot be watched");
		return;
	}
	if ((f = fopen("/proc/sys/fs/inotify/max_user_watches", "r"))) {
		if (fscanf(f, "%ld", &limit) != 1)
			limit = -1;
		fclose(f);
	}
	fprintf(stderr,
		"ts=now event=watch_degraded path=%s reason=\"inotify watch limit reached "
		"(fs.inotify.max_user_watches=%ld): raise it, about 5 per repository; polled until then\"\n",
		path, limit);
}

static int run_service(gw_archiver *ar, const char *root, unsigned debounce, double reconcile_s)
{
	gw_metrics_archiver *m = gw_archiver_metrics(ar);
	gw_watch_options wopts = GW_WATCH_OPTIONS_INIT;
	gw_watch *w = NULL;
	int64_t next_reconcile;
	struct sigaction sa;
	int ready = 0;

	if ((stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		gw_error_set_errno(GW_EIO, "cannot create an eventfd");
		return gw_cli_fail("archive");
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	wopts.debounce_ms = debounce;
	if (wopts.max_delay_ms < debounce)
		wopts.max_delay_ms = debounce;
	/* Watch first, then catch up: a change during the catch-up is not missed. */
	if (gw_watch_new(&w, root, &wopts) < 0) {
		close(stop_fd);
		stop_fd = -1;
		return gw_cli_fail("archive");
	}
	fprintf(stderr, "ts=start event=start root=%s\n", root);
	gw_archiver_tick(ar); /* segments spooled before a restart go first */
	gw_archiver_sync_all(ar);
	update_watch_metrics(m, w);
	next_reconcile = mono_ms() + (int64_t)(reconcile_s * 1000);
	while (!stop_requested) {
		/* The watcher, and the upload threads' reports (segments in the store, failures, conflicts). */
		struct pollfd pfd[3] = {{gw_watch_fd(w), POLLIN, 0}, {gw_archiver_fd(ar), POLLIN, 0}, {stop_fd, POLLIN, 0}};
		int timeout = gw_watch_next_timeout_ms(w), rc, tick = gw_archiver_tick(ar);
		gw_watch_event ev;
		if (!ready && !gw_archiver_holding(ar)) {
			gw_archiver_stats st;
			gw_archiver_get_stats(ar, &st);
			/*
			 * The catch-up is done (its loads and first full backups, on job
			 * threads): from here on, every change is archived as it is seen.
			 */
			fprintf(stderr, "ts=now event=ready repositories=%llu\n", (unsigned long long)st.repositories);
			ready = 1;
		}
		if (tick >= 0 && (timeout < 0 || tick < timeout))
			timeout = tick;
		if (reconcile_s > 0) {
			int64_t until = next_reconcile - mono_ms();
			if (until < 0)
				until = 0;
			if (timeout < 0 || until < timeout)
				timeout = (int)until;
		}
		rc = poll(pfd, 3, timeout);
		if (rc < 0 && errno != EINTR)
			break;
		if (gw_watch_process(w) < 0) {
			fprintf(stderr, "ts=now event=watch_error error=\"%s\"\n", gw_error_message());
			gw_metrics_counter_inc(m->errors[GW_METRICS_ERROR_WATCH]);
		}
		while (!stop_requested && gw_watch_take(w, &ev) == 1) {
			if (ev.kind == GW_WATCH_RESCAN_ALL) {
				fprintf(stderr, "ts=now event=rescan_all reason=inotify_overflow\n");
				gw_metrics_counter_inc(m->inotify_overflows);
				gw_archiver_sync_all(ar);
			} else {
				if (ev.kind == GW_WATCH_RESCAN)
					log_degraded(w, ev.repo);
				gw_archiver_sync_repo(ar, ev.repo, event_time_us(ev.first_ms));
			}
		}
		update_watch_metrics(m, w);
		if (reconcile_s > 0 && mono_ms() >= next_reconcile) {
			gw_watch_rescan(w);
			gw_archiver_sync_all(ar);
			next_reconcile = mono_ms() + (int64_t)(reconcile_s * 1000);
		}
	}
	gw_watch_free(w);
	close(stop_fd);
	stop_fd = -1;
	fprintf(stderr, "ts=stop event=stop\n");
	return 0;
}

typedef struct {
	gw_cli cli; /* first: the common options fill it */
	int once;
	double debounce, reconcile, full_every, full_ratio, full_max_age, spool_max;
	const char *metrics_addr;
	char *keep_within, *expire_every; /* retention (gitwal expire's policy), on a thread of its own */
	int keep_full;
} archive_opts;

static const gw_opt options[] = {
	GW_OPT_FLAG_("once", archive_opts, once,
		     "archive everything pending, upload it, then exit: 1 when\n"
		     "anything failed or is still in the spool (named)"),
	GW_OPT_NUMBER_("debounce", "MS", archive_opts, debounce, 0, 60000,
		       "coalesce a burst of changes to one repository for this\n"
		       "long (default 50), but never delay more than 1 s"),
	GW_OPT_NUMBER_("reconcile", "SECONDS", archive_opts, reconcile, 0, 86400 * 7,
		       "full scan of every repository this often, as a safety\n"
		       "net behind inotify (default 300; 0 disables)"),
	GW_OPT_TEXT_("Full backup policy (per repository, only when it changed since its last full):"),
	GW_OPT_NUMBER_("full-every", "N", archive_opts, full_every, 1, 1e9, "after N segments (default 1000)"),
	GW_OPT_NUMBER_("full-ratio", "R", archive_opts, full_ratio, 0.001, 1000,
		       "when its segments add up to R times the full's size (0.5)\n"
		       "and to at least 16 MiB"),
	GW_OPT_NUMBER_("full-max-age", "S", archive_opts, full_max_age, 1, 1e9,
		       "when the full is older than S seconds (default 86400)"),
	GW_OPT_TEXT_(""),
	GW_OPT_NUMBER_("spool-max", "MIB", archive_opts, spool_max, 1e-6, 1e7,
		       "bound of the local spool of segments not yet in the store\n"
		       "(default 1024); past it, changes are\n"
		       "archived when room returns, recorded as a gap. The\n"
		       "service starts even when the store is unreachable: it\n"
		       "loads what it archived before from the index and spools\n"
		       "(--once fails at once instead)"),
	GW_OPT_STRING_("metrics-addr", "ADDR", archive_opts, metrics_addr,
		       "serve Prometheus metrics on http://ADDR/metrics, a\n"
		       "loopback address such as 127.0.0.1:9100 (default: off)"),
	GW_OPT_TEXT_("Retention (gitwal expire's policy, applied on a thread of its own; not with --once):"),
	{.type = GW_OPT_COPY, .name = "keep-within", .arg = "DURATION", .offset = offsetof(archive_opts, keep_within),
	 .config = "gitwal.keepWithin",
	 .help = "keep every moment of the last DURATION (7d, 12h...)\n"
		 "restorable and remove what only serves earlier times\n"
		 "(default: keep everything) [gitwal.keepWithin]"},
	{.type = GW_OPT_INT, .name = "keep-full", .arg = "N", .offset = offsetof(archive_opts, keep_full), .min = 0,
	 .max = 1000000, .config = "gitwal.keepFull",
	 .help = "also keep the N newest full backups and all after them\n"
		 "[gitwal.keepFull]"},
	{.type = GW_OPT_COPY, .name = "expire-every", .arg = "DURATION", .offset = offsetof(archive_opts, expire_every),
	 .config = "gitwal.expireEvery",
	 .help = "apply it this often (default 1h; the first run a second\n"
		 "after start-up) [gitwal.expireEvery]"},
	GW_OPT_END_,
};

const gw_cli_spec gw_cmd_archive_spec = {
	.name = "archive",
	.head = "usage: gitwal archive [--root DIR] [--store URL] [--index FILE] [--once]\n"
		"                      [--debounce MS] [--reconcile SECONDS]\n"
		"                      [--full-every SEGMENTS] [--full-ratio R] [--full-max-age SECONDS]\n"		"                      [--keep-within DURATION [--keep-full N] [--expire-every DURATION]]\n"
		"\n"
		"Keep the store up to date with every bare repository under the root. Each\n"
		"change (refs, packed-refs, HEAD; repositories created or deleted) becomes a\n"
		"write-once log segment: the ref updates with their times plus the objects they\n"
		"newly need. A repository seen for the first time gets a full backup first.\n"
		"On start-up, changes made while the archiver was down are archived.\n"
		"\n"
		"Observing never waits on the store: a segment is written to a local spool\n"
		"(fsync'd, with the time the change was seen) and uploaded from there in the\n"
		"background, in order per repository, so a slow or failing store only grows\n"
		"the spool. Loads and full backups run in the background too: a repository\n"
		"waits only for its own first full backup, and a policy's full backup gives\n"
		"way to a change captured meanwhile (event=full_abandoned; taken again\n"
		"later). A repository that fails is retried on its own backoff (1 s,\n"
		"doubling to 60 s).\n"
		"\n"
		"A fork linked to an object pool under the root (objects/info/alternates)\n"
		"is archived against the pool, itself archived as a repository: the fork's\n"
		"records hold only its own objects and name the pool's full backup; its pool\n"
		"linked, unlinked, changed or in a new generation makes its next record a\n"
		"full backup (reason=pool_*).\n"
		"\n",
	.options = options,
	.column = 22,
	.tail = "\n"
		"Logs one key=value line per event on stderr (event=spooled|segment|full|\n"
		"upload_failed|store_unhealthy|store_healthy|error|..., repo=, lsn=, bytes=,\n"
		"lag_ms=: spooled, when captured; segment, when durable in the store;\n"
		"expire, expire_locked, expire_done: retention). SIGTERM or SIGINT: finish the work in hand\n"
		"and exit 0. Repositories 'gitwal backup' refuses (shallow or partial clones,\n"
		"reftable, unknown extensions...) are logged once (event=refused reason=...)\n"
		"and skipped until they change.\n",
};

int gw_cmd_archive(int argc, char **argv)
{
	archive_opts o = {.debounce = 50, .reconcile = 300};
	gw_cli *cli = &o.cli;
	gw_archiver_opts aopts;
	gw_archiver *ar = NULL;
	int rc, operands;
	char *state = NULL;
	gw_metrics_server *srv = NULL;
	gw_expire_service *expire = NULL;
	gw_expire_opts eopts;
	int64_t every_us = 3600LL * 1000000;

	memset(&aopts, 0, sizeof(aopts));
	memset(&eopts, 0, sizeof(eopts));
	if ((rc = gw_cli_parse(&gw_cmd_archive_spec, argc, argv, &o, &operands)) != GW_CLI_GO)
		goto out;
	rc = 0;
	aopts.full_every_segments = (uint64_t)o.full_every;
	aopts.full_ratio = o.full_ratio;
	aopts.full_max_age_s = (int64_t)o.full_max_age;
	if (o.spool_max > 0)
		aopts.spool_max_bytes = (uint64_t)(o.spool_max * 1024 * 1024) ? (uint64_t)(o.spool_max * 1024 * 1024) : 1;
	/* The service starts with the store away (it spools); --once, a one-shot command, fails at once. */
	if (!o.once)
		cli->store_flags = GW_STORE_OPEN_DEFER_CHECKS;
	if (gw_cli_resolve(cli, 1) < 0) {
		rc = gw_cli_fail("archive");
		goto out;
	}
	if (o.keep_within && gw_duration_parse(o.keep_within, &eopts.keep_within_us) < 0) {
		rc = gw_cli_usage_error("archive", "option --keep-within (gitwal.keepWithin): %s", gw_error_message());
		goto out;
	}
	if (o.expire_every && gw_duration_parse(o.expire_every, &every_us) < 0) {
		rc = gw_cli_usage_error("archive", "option --expire-every (gitwal.expireEvery): %s", gw_error_message());
		goto out;
	}
	if (gw_cli_open_store(cli) < 0 || gw_cli_open_index(cli) < 0 || !(state = gw_cli_state_dir())) {
		rc = gw_cli_fail("archive");
		goto out;
	}
	aopts.root = cli->root;
	aopts.state_dir = state;
	aopts.log = stderr;
	aopts.stop = &stop_requested;
	aopts.upload_threads = o.once ? 0 : 4; /* --once uploads at the end, in this thread */
	aopts.job_threads = o.once ? 0 : 2;    /* --once loads and takes full backups in this thread */
	if (gw_archiver_new(&ar, cli->store, cli->index, &aopts) < 0) {
		rc = gw_cli_fail("archive");
		goto out;
	}
	if (o.metrics_addr) {
		/* The archiver counts whether or not this serves its registry. */
		if (gw_metrics_serve(gw_archiver_registry(ar), o.metrics_addr, &srv) < 0) {
			rc = gw_cli_fail("archive");
			goto out;
		}
		fprintf(stderr, "ts=start event=metrics addr=%s port=%u\n", o.metrics_addr,
			(unsigned)gw_metrics_server_port(srv));
	}
	if (o.once) {
		int failed, round;
		gw_archiver_stats st;
		gw_archiver_tick(ar); /* segments spooled before go first */
		failed = gw_archiver_sync_all(ar);
		/* Upload what was captured; a repository set aside on a conflict is captured again, then uploaded. */
		for (round = 0; round < 3; round++) {
			gw_archiver_tick(ar);
			gw_archiver_get_stats(ar, &st);
			if (!st.spool_segments)
				break;
		}
		gw_archiver_report_spooled(ar, stderr);
		fprintf(stderr,
			"gitwal archive: %llu repositories, %llu segments, %llu full backups, %d failed, "
			"%llu segments waiting in the spool\n",
			(unsigned long long)st.repositories, (unsigned long long)st.segments,
			(unsigned long long)st.fulls, failed, (unsigned long long)st.spool_segments);
		rc = failed || st.spool_segments ? 1 : 0;
	} else {
		/* Retention runs beside the loop, never in it: it shares only the store and the index. */
		if (o.keep_within) {
			eopts.keep_full = (unsigned)o.keep_full;
			eopts.log = stderr;
			eopts.kill_after = -1;
			if (gw_expire_service_start(&expire, cli->store, cli->index, &eopts, every_us) < 0) {
				rc = gw_cli_fail("archive");
				goto out;
			}
			fprintf(stderr, "ts=start event=expire_policy keep_within=%s keep_full=%d every=%s\n", o.keep_within,
				o.keep_full, o.expire_every ? o.expire_every : "1h");
		}
		rc = run_service(ar, cli->root, (unsigned)o.debounce, o.reconcile);
	}
out:
	gw_expire_service_stop(expire);
	gw_metrics_server_stop(srv);
	gw_archiver_free(ar);
	free(state);
	free(o.keep_within);
	free(o.expire_every);
	gw_cli_dispose(cli);
	return rc;
}
