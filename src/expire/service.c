/*
 * Retention inside the archive service (DESIGN.md 18.7): a thread of its own
 * runs the policy soon after the service is ready, then on its interval. The
 * service loop never waits on it: the thread shares only the store and the
 * index (both safe across threads), never the archiver's state, and what it
 * removes is always below every repository's newest full backup, which the
 * archiver builds on. A stop ends a run after its batch in hand.
 */
#include "gitwal/expire.h"
#include "gitwal/error.h"
#include "util/thread.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The first run waits this long after start: the service's catch-up goes first. */
#define FIRST_RUN_DELAY_MS 1000

struct gw_expire_service {
	gw_store *store;
	gw_index *index;
	gw_expire_opts opts;
	int64_t every_us;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	volatile int stop;
};

static void deadline_in(struct timespec *ts, int64_t us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(us / 1000000);
	ts->tv_nsec += (long)(us % 1000000) * 1000;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *service_main(void *arg)
{
	gw_expire_service *s = arg;
	struct timespec at;
	int64_t wait_us = FIRST_RUN_DELAY_MS * 1000LL;
	for (;;) {
		gw_expire_result res;
		pthread_mutex_lock(&s->lock);
		deadline_in(&at, wait_us);
		while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &at) == 0)
			;
		pthread_mutex_unlock(&s->lock);
		if (s->stop)
			break;
		s->opts.now_us = 0; /* the clock, at each run */
		if (gw_expire_run(s->store, s->index, &s->opts, &res) < 0 && s->opts.log) {
			fprintf(s->opts.log, "ts=now event=expire_error error=\"%s\"\n", gw_error_message());
			fflush(s->opts.log);
		}
		gw_expire_result_dispose(&res);
		wait_us = s->every_us;
	}
	return NULL;
}

int gw_expire_service_start(gw_expire_service **out, gw_store *store, gw_index *index, const gw_expire_opts *policy,
			    int64_t every_us)
{
	gw_expire_service *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int err;
	*out = NULL;
	if (!s)
		return gw_error_set(GW_ERROR, "out of memory");
	s->store = store;
	s->index = index;
	s->opts = *policy;
	s->opts.repos = NULL;
	s->opts.nrepos = 0;
	s->opts.dry_run = 0;
	s->opts.stop = &s->stop;
	s->every_us = every_us > 0 ? every_us : 3600LL * 1000000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	if ((err = gw_thread_create(&s->thread, service_main, s)) != 0) {
		pthread_cond_destroy(&s->wake);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return gw_error_set(GW_ERROR, "cannot start the expire thread: %s", strerror(err));
	}
	*out = s;
	return 0;
}

void gw_expire_service_stop(gw_expire_service *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
