/*
 * Ref states (see refstate.h).
 */
#include "format/refstate.h"
#include "gitwal/error.h"

#include <stdlib.h>
#include <string.h>

#define OID 20


static int ref_copy(gw_ref *dst, const gw_ref *src)
{
	*dst = *src;
	dst->name = src->name ? strdup(src->name) : NULL;
	dst->symbolic = src->symbolic ? strdup(src->symbolic) : NULL;
	if ((src->name && !dst->name) || (src->symbolic && !dst->symbolic))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

void gw_refstate_dispose(gw_refstate *s)
{
	gw_refs_free(s->refs, s->nrefs);
	gw_ref_dispose(&s->head);
	memset(s, 0, sizeof(*s));
}

int gw_refstate_copy(gw_refstate *dst, const gw_refstate *src)
{
	size_t i;
	memset(dst, 0, sizeof(*dst));
	if (src->nrefs && !(dst->refs = calloc(src->nrefs, sizeof(gw_ref))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < src->nrefs; i++, dst->nrefs++)
		if (ref_copy(&dst->refs[i], &src->refs[i]) < 0)
			return GW_ERROR;
	return ref_copy(&dst->head, &src->head);
}

static int ref_name_cmp(const void *a, const void *b)
{
	return strcmp(((const gw_ref *)a)->name, ((const gw_ref *)b)->name);
}

static gw_ref *find_ref(gw_refstate *s, const char *name)
{
	gw_ref key;
	key.name = (char *)name;
	return s->nrefs ? bsearch(&key, s->refs, s->nrefs, sizeof(gw_ref), ref_name_cmp) : NULL;
}

static void set_oid_hex(gw_ref *r, const char *hex)
{
	memset(r->oid, 0, sizeof(r->oid));
	r->dangling = !*hex;
	if (*hex)
		gw_hex_decode(r->oid, hex, OID);
}

int gw_refstate_apply(gw_refstate *s, const gw_update *updates, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		const gw_update *u = &updates[i];
		gw_ref *r;
		if (u->kind == GW_UPDATE_DELETED) {
			gw_refs_free(s->refs, s->nrefs);
			s->refs = NULL;
			s->nrefs = 0;
			continue;
		}
		if (u->kind != GW_UPDATE_REF && u->kind != GW_UPDATE_SYMREF)
			continue;
		if (!strcmp(u->ref, "HEAD")) {
			free(s->head.symbolic);
			if (!s->head.name)
				s->head.name = strdup("HEAD");
			s->head.symbolic = u->kind == GW_UPDATE_SYMREF && *u->new_target ? strdup(u->new_target) : NULL;
			if (u->kind == GW_UPDATE_REF)
				set_oid_hex(&s->head, u->new_oid);
			continue;
		}
		r = find_ref(s, u->ref);
		if ((u->kind == GW_UPDATE_REF && !*u->new_oid) || (u->kind == GW_UPDATE_SYMREF && !*u->new_target)) {
			if (r) {
				size_t at = (size_t)(r - s->refs);
				gw_ref_dispose(r);
				memmove(r, r + 1, (s->nrefs - at - 1) * sizeof(gw_ref));
				s->nrefs--;
			}
			continue;
		}
		if (!r) {
			gw_ref *nr = realloc(s->refs, (s->nrefs + 1) * sizeof(gw_ref));
			if (!nr)
				return gw_error_set(GW_ERROR, "out of memory");
			s->refs = nr;
			r = &s->refs[s->nrefs++];
			memset(r, 0, sizeof(*r));
			r->name = strdup(u->ref);
			qsort(s->refs, s->nrefs, sizeof(gw_ref), ref_name_cmp);
			r = find_ref(s, u->ref);
		}
		free(r->symbolic);
		r->symbolic = NULL;
		if (u->kind == GW_UPDATE_SYMREF) {
			r->symbolic = strdup(u->new_target);
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
		gw_hex_decode(out->oid, m->oid, OID);
	return out->name && (!m->symbolic || out->symbolic) ? 0 : gw_error_set(GW_ERROR, "out of memory");
}

int gw_refstate_from_manifest(gw_refstate *s, const gw_manifest *m)
{
	size_t i;
	int rc;
	memset(s, 0, sizeof(*s));
	if (m->nrefs && !(s->refs = calloc(m->nrefs, sizeof(gw_ref))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < m->nrefs; i++, s->nrefs++)
		if ((rc = ref_from_manifest(&s->refs[i], &m->refs[i])) < 0)
			return rc;
	return ref_from_manifest(&s->head, &m->head);
}
