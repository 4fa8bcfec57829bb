/*
 * What a long operation (backup, restore, audit) counts so that a progress
 * display (src/cli/progress.c) can show how far it is and how long it has
 * left. The operation's threads update the counters and the display's thread
 * reads them, both with __atomic builtins (relaxed: each counter is read on
 * its own, and a display a moment behind is fine). Bytes moved are not
 * counted here: the store counts them as they stream (gw_store_traffic).
 */
#ifndef GITWAL_PROGRESS_H
#define GITWAL_PROGRESS_H

#include <stdint.h>

typedef struct gw_progress_counters {
	/* What is counted ("repositories", "records"), or with total 0 what is being done ("listing the store"). */
	const char *unit;
	uint64_t total;         /* units to do; 0: not known yet */
	uint64_t started;       /* units begun */
	uint64_t done;          /* units finished (failed ones too) */
	uint64_t planned_bytes; /* bytes the units begun will move, as far as known before moving them */
} gw_progress_counters;

/* Add n to a counter of c, if there is c (operations take an optional one). */
#define GW_PROGRESS_ADD(c, field, n)                                                   \
	do {                                                                            \
		if (c)                                                                  \
			__atomic_add_fetch(&(c)->field, (uint64_t)(n), __ATOMIC_RELAXED); \
	} while (0)

/* Start counting another phase: unit and total (the counts start again from 0). */
static inline void gw_progress_phase(gw_progress_counters *c, const char *unit, uint64_t total)
{
	if (!c)
		return;
	__atomic_store_n(&c->total, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->started, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->planned_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->unit, unit, __ATOMIC_RELAXED);
	__atomic_store_n(&c->total, total, __ATOMIC_RELEASE);
}

#endif
