/*
 * Refs owning their strings, and the ref-name checks shared by the refs
 * reader, the manifest and the segment parsers (see refname.h for why names
 * and targets differ).
 */
#include "format/refname.h"
#include "util/git_init.h"

#include <git2.h>
#include <stdlib.h>
#include <string.h>

void gw_ref_dispose(gw_ref *ref)
{
	free(ref->name);
	free(ref->symbolic);
	memset(ref, 0, sizeof(*ref));
}

void gw_refs_free(gw_ref *refs, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		free(refs[i].name);
		free(refs[i].symbolic);
	}
	free(refs);
}

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

const char *gw_ref_invalid(const char *name, const char *target)
{
	int head = !strcmp(name, "HEAD");
	if (!head && !gw_ref_name_valid(name))
		return "is not a valid ref name";
	if (!target)
		return NULL;
	/* Git takes a directory for a repository only if its HEAD is "ref: refs/..." or an object id. */
	if (head)
		return gw_ref_name_valid(target) ? NULL : "does not point at a valid ref name under refs/";
	return gw_ref_target_valid(target) ? NULL : "does not point at a valid ref name";
}
