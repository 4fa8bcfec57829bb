/*
 * Ref-name checks shared by the refs reader, the manifest and the segment
 * parsers (see refname.h for why names and targets differ).
 */
#include "format/refname.h"
#include "util/git_init.h"

#include <git2.h>
#include <string.h>

int gw_ref_target_valid(const char *name)
{
	int valid = 0;
	gw_git_init();
	return git_reference_name_is_valid(&valid, name) == 0 && valid;
}

int gw_ref_name_valid(const char *name)
{
	return strncmp(name, "refs/", 5) == 0 && gw_ref_target_valid(name);
}
