/*
 * Ref states (see refstate.h).
 */
#include "format/refstate.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <stdlib.h>
#include <string.h>

void gw_refstate_dispose(gw_refstate *s)
{
	gw_refs_free(s->refs, s->nrefs);
	gw_ref_dispose(&s->head);
	memset(s, 0, sizeof(*s));
}

/* The index of name in s, or where it would go: *found tells which. */
static size_t ref_position(const gw_refstate *s, const char *name, int *found)
{
	size_t lo = 0, hi = s->nrefs;
	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(s->refs[mid].name, name);
		if (cmp == 0) {
			*found = 1;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const gw_ref *gw_refstate_find(const gw_refstate *s, const char *name)
{
	int found;
	size_t at = ref_position(s, name, &found);
	return found ? &s->refs[at] : NULL;
}

/* Insert an empty ref called name in its place (the array stays sorted). */
static gw_ref *insert_ref(gw_refstate *s, size_t at, const char *name)
{
	char *copy;
	if (GW_ARRAY_RESERVE(s->refs, s->cap, s->nrefs + 1) < 0)
		return NULL;
	if (!(copy = strdup(name))) {
		gw_error_set(GW_ERROR, "out of memory");
		return NULL;
	}
	memmove(&s->refs[at + 1], &s->refs[at], (s->nrefs - at) * sizeof(gw_ref));
	s->nrefs++;
	memset(&s->refs[at], 0, sizeof(gw_ref));
	s->refs[at].name = copy;
	return &s->refs[at];
}

/*
 * An id in hex, as the manifest and segment parsers checked it: 40 or 64
 * lowercase digits, the length its object format gives (never longer than
 * GW_HEX_MAX - 1: the fields are that size).
 */
static void decode_oid(unsigned char *oid, const char *hex)
{
	size_t n = strnlen(hex, GW_HEX_MAX - 1) / 2;
	memset(oid, 0, GW_HASH_MAX);
	gw_hex_decode(oid, hex, n);
}

static void set_oid_hex(gw_ref *r, const char *hex)
{
	memset(r->oid, 0, sizeof(r->oid));
	r->dangling = !*hex;
	if (*hex)
		decode_oid(r->oid, hex);
}

int gw_refstate_apply(gw_refstate *s, const gw_update *updates, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		const gw_update *u = &updates[i];
		gw_ref *r;
		size_t at;
		int found;
		if (u->kind == GW_UPDATE_DELETED) {
			gw_refs_free(s->refs, s->nrefs);
			s->refs = NULL;
			s->nrefs = s->cap = 0;
			continue;
		}
		if (u->kind != GW_UPDATE_REF && u->kind != GW_UPDATE_SYMREF)
			continue;
		if (!strcmp(u->ref, "HEAD")) {
			free(s->head.symbolic);
			s->head.symbolic = NULL;
			if (!s->head.name && !(s->head.name = strdup("HEAD")))
				return gw_error_set(GW_ERROR, "out of memory");
			if (u->kind == GW_UPDATE_SYMREF && *u->new_target && !(s->head.symbolic = strdup(u->new_target)))
				return gw_error_set(GW_ERROR, "out of memory");
			if (u->kind == GW_UPDATE_REF)
				set_oid_hex(&s->head, u->new_oid);
			continue;
		}
		at = ref_position(s, u->ref, &found);
		if ((u->kind == GW_UPDATE_REF && !*u->new_oid) || (u->kind == GW_UPDATE_SYMREF && !*u->new_target)) {
			if (found) {
				gw_ref_dispose(&s->refs[at]);
				memmove(&s->refs[at], &s->refs[at + 1], (s->nrefs - at - 1) * sizeof(gw_ref));
				s->nrefs--;
			}
			continue;
		}
		if (!(r = found ? &s->refs[at] : insert_ref(s, at, u->ref)))
			return GW_ERROR;
		free(r->symbolic);
		r->symbolic = NULL;
		if (u->kind == GW_UPDATE_SYMREF) {
			if (!(r->symbolic = strdup(u->new_target)))
				return gw_error_set(GW_ERROR, "out of memory");
			r->dangling = 1;
		} else {
			set_oid_hex(r, u->new_oid);
		}
	}
	return 0;
}


static int ref_from_manifest(gw_ref *out, const gw_manifest_ref *m)
{
	memset(out, 0, sizeof(*out));
	out->name = strdup(m->name);
	out->symbolic = m->symbolic ? strdup(m->symbolic) : NULL;
	out->dangling = !m->oid[0];
	if (m->oid[0])
		decode_oid(out->oid, m->oid);
	return out->name && (!m->symbolic || out->symbolic) ? 0 : gw_error_set(GW_ERROR, "out of memory");
}

int gw_refstate_from_manifest(gw_refstate *s, const gw_manifest *m)
{
	size_t i;
	int rc;
	memset(s, 0, sizeof(*s));
	if (m->nrefs && !(s->refs = calloc(m->nrefs, sizeof(gw_ref))))
		return gw_error_set(GW_ERROR, "out of memory");
	s->cap = m->nrefs;
	for (i = 0; i < m->nrefs; i++, s->nrefs++)
		if ((rc = ref_from_manifest(&s->refs[i], &m->refs[i])) < 0)
			return rc;
	return ref_from_manifest(&s->head, &m->head);
}
