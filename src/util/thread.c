/*
 * Worker threads that leave signals to the main thread (see thread.h).
 */
#include "util/thread.h"

#include <signal.h>

int gw_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;
	/* A new thread inherits its creator's mask: block everything around the creation only. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
