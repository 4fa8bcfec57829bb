/* Initialise libgit2 once, on first use (see git_init.c). */
#ifndef GITWAL_GIT_INIT_H
#define GITWAL_GIT_INIT_H

void gw_git_init(void);

#endif
