/*
 * The pool dependency of a pooled member's records (DESIGN.md 19): written
 * and read as one JSON object, validated on the way in because the store is
 * untrusted (the pool's path becomes a path at restore), and the relative
 * alternates line restore writes for a linked member.
 */
#include "format/pool.h"
#include "gitwal/error.h"
#include "gitwal/repo.h"

#include <stdlib.h>
#include <string.h>

json_t *gw_pool_dep_json(const gw_pool_dep *d)
{
	return json_pack("{s:s, s:I, s:I}", "repository", d->repository, "base_lsn", (json_int_t)d->base_lsn, "lsn",
			 (json_int_t)d->lsn);
}

static int bad(const char *what, const char *field, const char *why)
{
	return gw_error_set(GW_ECORRUPT, "%s: field 'pool.%s' %s", what, field, why);
}

static int get_lsn(json_t *v, const char *what, const char *field, uint64_t *out)
{
	json_t *n = json_object_get(v, field);
	*out = 0;
	if (!json_is_integer(n) || json_integer_value(n) < 0)
		return bad(what, field, "is missing or not a non-negative integer");
	*out = (uint64_t)json_integer_value(n);
	return 0;
}

int gw_pool_dep_parse(gw_pool_dep *d, json_t *v, const char *member, const char *what)
{
	json_t *r;
	const char *s;
	int rc;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(v))
		return bad(what, "", "is not an object");
	if (json_object_size(v) != 3)
		return gw_error_set(GW_ECORRUPT, "%s: field 'pool' has %zu keys (expected repository, base_lsn, lsn)",
				    what, json_object_size(v));
	r = json_object_get(v, "repository");
	if (!json_is_string(r) || strlen(json_string_value(r)) != json_string_length(r))
		return bad(what, "repository", "is missing or not a string");
	s = json_string_value(r);
	if (gw_repo_path_check(s) < 0 || !strcmp(s, member))
		return gw_error_set(GW_ECORRUPT, "%s: field 'pool.repository' is not a repository path for %s's pool: '%s'",
				    what, member, s);
	if ((rc = get_lsn(v, what, "base_lsn", &d->base_lsn)) < 0 || (rc = get_lsn(v, what, "lsn", &d->lsn)) < 0)
		return rc;
	if (d->base_lsn > d->lsn)
		return bad(what, "base_lsn", "is above pool.lsn");
	if (!(d->repository = strdup(s)))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

void gw_pool_dep_dispose(gw_pool_dep *d)
{
	free(d->repository);
	memset(d, 0, sizeof(*d));
}

int gw_pool_alternates_line(const char *member, const char *pool, char **out)
{
	size_t up = 2, i, len; /* objects/ up to the member, then the member's last component */
	const char *c;
	char *line, *p;

	*out = NULL;
	if (gw_repo_path_check(member) < 0 || gw_repo_path_check(pool) < 0)
		return gw_error_prefix("alternates of %s", member);
	for (c = member; *c; c++)
		up += *c == '/';
	len = up * 3 + strlen(pool) + strlen("/objects") + 1;
	if (!(line = malloc(len)))
		return gw_error_set(GW_ERROR, "out of memory");
	for (p = line, i = 0; i < up; i++, p += 3)
		memcpy(p, "../", 3);
	snprintf(p, len - up * 3, "%s/objects", pool);
	*out = line;
	return 0;
}
