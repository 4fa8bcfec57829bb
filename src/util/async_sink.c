/*
 * gw_async_sink: a two-thread pipeline stage (see io.h). A ring of
 * ASYNC_BUFFERS buffers: the producer fills one while the worker drains the
 * others into the next sink. Memory is bounded by the ring.
 */
#include "gitwal/io.h"
#include "util/thread.h"
#include "gitwal/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASYNC_BUFFERS 4
#define ASYNC_BUFFER_SIZE (1u << 20)

struct gw_async_sink {
	gw_sink sink;
	gw_sink *next;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned char *bufs[ASYNC_BUFFERS];
	size_t lens[ASYNC_BUFFERS];
	unsigned head;   /* next buffer the worker drains */
	unsigned filled; /* buffers queued for the worker */
	unsigned cur;    /* buffer the producer fills */
	size_t cur_len;
	int stop;
	int error;       /* first downstream error code */
	char message[1024];
};

static void *drain(void *arg)
{
	gw_async_sink *a = arg;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		unsigned i;
		size_t len;
		int rc;
		while (!a->filled && !a->stop)
			pthread_cond_wait(&a->changed, &a->lock);
		if (!a->filled && a->stop)
			break;
		i = a->head;
		len = a->lens[i];
		pthread_mutex_unlock(&a->lock);
		rc = a->error ? 0 : gw_sink_write(a->next, a->bufs[i], len);
		pthread_mutex_lock(&a->lock);
		if (rc < 0 && !a->error) {
			a->error = rc;
			snprintf(a->message, sizeof(a->message), "%s", gw_error_message());
		}
		a->head = (a->head + 1) % ASYNC_BUFFERS;
		a->filled--;
		pthread_cond_broadcast(&a->changed);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static int report(gw_async_sink *a)
{
	return gw_error_set(a->error, "%s", a->message);
}

/* Queue the current buffer and wait for a free one. Called with the lock held. */
static void hand_off(gw_async_sink *a)
{
	a->lens[a->cur] = a->cur_len;
	a->filled++;
	pthread_cond_broadcast(&a->changed);
	a->cur = (a->cur + 1) % ASYNC_BUFFERS;
	a->cur_len = 0;
	while (a->filled == ASYNC_BUFFERS)
		pthread_cond_wait(&a->changed, &a->lock);
}

static int async_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_async_sink *a = (gw_async_sink *)sink;
	const unsigned char *p = buf;
	while (len) {
		size_t n = ASYNC_BUFFER_SIZE - a->cur_len;
		if (n > len)
			n = len;
		memcpy(a->bufs[a->cur] + a->cur_len, p, n);
		a->cur_len += n;
		p += n;
		len -= n;
		if (a->cur_len == ASYNC_BUFFER_SIZE) {
			pthread_mutex_lock(&a->lock);
			hand_off(a);
			pthread_mutex_unlock(&a->lock);
		}
		if (a->error)
			return report(a);
	}
	return 0;
}

int gw_async_sink_new(gw_async_sink **out, gw_sink *next)
{
	gw_async_sink *a = calloc(1, sizeof(*a));
	int i;
	*out = NULL;
	if (!a)
		return gw_error_set(GW_ERROR, "out of memory");
	a->sink.write = async_write;
	a->next = next;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->changed, NULL);
	for (i = 0; i < ASYNC_BUFFERS; i++)
		if (!(a->bufs[i] = malloc(ASYNC_BUFFER_SIZE))) {
			gw_async_sink_free(a);
			return gw_error_set(GW_ERROR, "out of memory");
		}
	if (gw_thread_create(&a->thread, drain, a) != 0) {
		gw_async_sink_free(a);
		return gw_error_set(GW_ERROR, "cannot start a writer thread");
	}
	a->started = 1;
	*out = a;
	return 0;
}

gw_sink *gw_async_sink_as_sink(gw_async_sink *a)
{
	return &a->sink;
}

int gw_async_sink_finish(gw_async_sink *a)
{
	pthread_mutex_lock(&a->lock);
	if (a->cur_len)
		hand_off(a);
	while (a->filled)
		pthread_cond_wait(&a->changed, &a->lock);
	pthread_mutex_unlock(&a->lock);
	return a->error ? report(a) : 0;
}

void gw_async_sink_free(gw_async_sink *a)
{
	int i;
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stop = 1;
		pthread_cond_broadcast(&a->changed);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->changed);
	for (i = 0; i < ASYNC_BUFFERS; i++)
		free(a->bufs[i]);
	free(a);
}
