/*
 * libgit2 must be initialised before any call, even a pure one such as
 * git_reference_name_is_valid (it reports errors through thread-local
 * state set up by git_libgit2_init). The library initialises it once, on
 * first use, so every entry point is safe whoever calls it.
 */
#include "util/git_init.h"

#include <git2.h>
#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	git_libgit2_init();
}

void gw_git_init(void)
{
	pthread_once(&once, init);
}
