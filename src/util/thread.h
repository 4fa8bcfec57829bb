/*
 * Starting gitwal's worker threads. Every worker blocks every signal, so a
 * signal sent to the process (SIGTERM, SIGINT: stop) is delivered to the
 * main thread, whose poll it interrupts, and never to a worker that would
 * leave the main loop asleep until its next timeout.
 */
#ifndef GITWAL_UTIL_THREAD_H
#define GITWAL_UTIL_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread; 0 or an errno value, as pthread_create. */
int gw_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
