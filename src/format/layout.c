/*
 * Store keys: building them, parsing them back (for index rebuilds and the
 * audit), and allocating LSNs by listing.
 */
#include "gitwal/layout.h"
#include "gitwal/error.h"
#include "gitwal/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_suffix(gw_key_kind kind)
{
	switch (kind) {
	case GW_KEY_FULL_BUNDLE:
		return ".full.bundle";
	case GW_KEY_FULL_IDX:
		return ".full.idx";
	case GW_KEY_FULL_MANIFEST:
		return ".full.manifest";
	case GW_KEY_SEGMENT:
		return ".seg";
	case GW_KEY_EXPIRE:
		return ".expire";
	default:
		return NULL;
	}
}

char *gw_layout_repo_prefix(const char *rel)
{
	char *enc = gw_repo_path_encode(rel), *out;
	size_t n;
	if (!enc)
		return NULL;
	n = strlen(GW_LAYOUT_REPOS) + strlen(enc) + 2;
	if ((out = malloc(n)))
		snprintf(out, n, "%s%s/", GW_LAYOUT_REPOS, enc);
	free(enc);
	return out;
}

char *gw_layout_key(const char *rel, uint64_t lsn, gw_key_kind kind)
{
	char *prefix = gw_layout_repo_prefix(rel), *out;
	const char *suffix = kind_suffix(kind);
	size_t n;
	if (!prefix || !suffix) {
		free(prefix);
		return NULL;
	}
	n = strlen(prefix) + 21 + strlen(suffix) + 1;
	if ((out = malloc(n)))
		snprintf(out, n, "%s%020llu%s", prefix, (unsigned long long)lsn, suffix);
	free(prefix);
	return out;
}

/* The 20 leading digits as an LSN; -1 when they exceed 64 bits. */
static int parse_lsn(const char *digits, uint64_t *lsn)
{
	uint64_t v = 0;
	int i;
	for (i = 0; i < 20; i++) {
		unsigned d = (unsigned)(digits[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*lsn = v;
	return 0;
}

int gw_layout_parse_key(const char *key, char **rel, uint64_t *lsn, gw_key_kind *kind)
{
	const char *p, *slash, *name;
	char component[4096];
	gw_key_kind k;
	size_t i;

	*rel = NULL;
	*lsn = 0;
	*kind = GW_KEY_UNKNOWN;
	if (strncmp(key, GW_LAYOUT_REPOS, strlen(GW_LAYOUT_REPOS)) != 0)
		return 0;
	p = key + strlen(GW_LAYOUT_REPOS);
	if (!(slash = strchr(p, '/')) || (size_t)(slash - p) >= sizeof(component) || strchr(slash + 1, '/'))
		return 0;
	name = slash + 1;
	if (strlen(name) < 21)
		return 0;
	for (i = 0; i < 20; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_EXPIRE; k++)
		if (strcmp(name + 20, kind_suffix(k)) == 0)
			break;
	if (k > GW_KEY_EXPIRE)
		return 0;
	memcpy(component, p, (size_t)(slash - p));
	component[slash - p] = '\0';
	if (!(*rel = gw_repo_path_decode(component)))
		return GW_ECORRUPT;
	if (parse_lsn(name, lsn) < 0) {
		free(*rel);
		*rel = NULL;
		return 0;
	}
	*kind = k;
	return 0;
}

typedef struct {
	uint64_t max;
} max_lsn;

static int track_max(const gw_store_entry *e, void *payload)
{
	max_lsn *m = payload;
	const char *name = strrchr(e->key, '/');
	uint64_t lsn = 0;
	name = name ? name + 1 : e->key;
	if (strlen(name) >= 20 && parse_lsn(name, &lsn) == 0 && lsn > m->max)
		m->max = lsn;
	return 0;
}

int gw_layout_next_lsn(gw_store *store, const char *rel, uint64_t *lsn)
{
	char *prefix = gw_layout_repo_prefix(rel);
	max_lsn m = {0};
	int rc;
	if (!prefix)
		return gw_error_set(GW_ERROR, "out of memory");
	rc = gw_store_list(store, prefix, track_max, &m);
	free(prefix);
	if (rc < 0)
		return rc;
	if (m.max == UINT64_MAX)
		return gw_error_set(GW_EINVALID, "repository %s: its LSNs are exhausted (a key at LSN %llu exists)", rel,
				    (unsigned long long)m.max);
	*lsn = m.max + 1;
	return 0;
}
