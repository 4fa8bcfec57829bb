/*
 * The transfer threads and the buffer budget of an s3:// store.
 *
 * A writer uploads parts of one object, and a reader downloads ranges of
 * one, several at once (parallel=). Each part or range is one blocking
 * s3_request_run, with its retries, deadlines and health reports as for
 * any request, run by one of the store's transfer threads: a small pool
 * shared by every writer and reader of the store (so backup --jobs N and
 * restore --jobs N share it, as they share the store's connections), started
 * as work needs them and ended with the store; never a thread per part.
 * The writer or reader keeps the order: it hands out whole buffers and
 * takes them back in sequence (s3.c).
 *
 * The budget bounds the buffers of all of them together (S3_BUFFER_BUDGET):
 * a writer or reader asks it for every buffer past its first two, and runs
 * with fewer in flight when it says no, so memory stays bounded however
 * many objects are open, and nobody waits on another's buffers.
 */
#include "store/s3.h"
#include "util/thread.h"

#include <stdlib.h>

static void *worker(void *arg)
{
	gw_s3 *s3 = arg;
	s3_job *job;

	pthread_mutex_lock(&s3->xfer_lock);
	for (;;) {
		while (!s3->jobs && !s3->xfer_stop) {
			s3->idle_workers++;
			pthread_cond_wait(&s3->xfer_cond, &s3->xfer_lock);
			s3->idle_workers--;
		}
		if (!(job = s3->jobs))
			break;
		if (!(s3->jobs = job->next))
			s3->jobs_tail = NULL;
		pthread_mutex_unlock(&s3->xfer_lock);
		job->next = NULL;
		job->run(job);
		pthread_mutex_lock(&s3->xfer_lock);
	}
	pthread_mutex_unlock(&s3->xfer_lock);
	return NULL;
}

int s3_xfer_init(gw_s3 *s3)
{
	pthread_mutex_init(&s3->xfer_lock, NULL);
	pthread_cond_init(&s3->xfer_cond, NULL);
	return 0;
}

void s3_xfer_submit(gw_s3 *s3, s3_job *job)
{
	size_t queued = 1;
	s3_job *j;
	int inline_run = 0;

	job->next = NULL;
	pthread_mutex_lock(&s3->xfer_lock);
	for (j = s3->jobs; j; j = j->next)
		queued++;
	if (s3->jobs_tail)
		s3->jobs_tail->next = job;
	else
		s3->jobs = job;
	s3->jobs_tail = job;
	/* A thread more when the queue outgrows the idle ones (a woken one may not have taken its job yet). */
	if (queued > s3->idle_workers && s3->nworkers < S3_WORKERS_MAX &&
	    gw_thread_create(&s3->workers[s3->nworkers], worker, s3) == 0)
		s3->nworkers++;
	if (!s3->nworkers) {
		/* No thread could be started: the caller does the work itself, so it still gets done. */
		s3->jobs = s3->jobs_tail = NULL;
		inline_run = 1;
	}
	pthread_cond_signal(&s3->xfer_cond);
	pthread_mutex_unlock(&s3->xfer_lock);
	if (inline_run)
		job->run(job);
}

void s3_xfer_dispose(gw_s3 *s3)
{
	size_t i;
	pthread_mutex_lock(&s3->xfer_lock);
	s3->xfer_stop = 1;
	pthread_cond_broadcast(&s3->xfer_cond);
	pthread_mutex_unlock(&s3->xfer_lock);
	for (i = 0; i < s3->nworkers; i++)
		pthread_join(s3->workers[i], NULL);
	s3->nworkers = 0;
	pthread_cond_destroy(&s3->xfer_cond);
	pthread_mutex_destroy(&s3->xfer_lock);
}

int s3_budget_take(gw_s3 *s3, size_t bytes, int force)
{
	int ok;
	pthread_mutex_lock(&s3->xfer_lock);
	ok = force || s3->buffered + bytes <= S3_BUFFER_BUDGET;
	if (ok)
		s3->buffered += bytes;
	if (s3->buffered > s3->buffered_peak)
		s3->buffered_peak = s3->buffered;
	pthread_mutex_unlock(&s3->xfer_lock);
	return ok;
}

void s3_budget_give(gw_s3 *s3, size_t bytes)
{
	pthread_mutex_lock(&s3->xfer_lock);
	s3->buffered -= bytes < s3->buffered ? bytes : s3->buffered;
	pthread_mutex_unlock(&s3->xfer_lock);
}
