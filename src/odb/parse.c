/*
 * What a walk of the object graph needs from the objects that reach others
 * (include/gitwal/odb.h): a commit's tree and parents, a tag's target, a
 * tree's entries. Read as git writes them, from data that is not trusted:
 * every field is bounds-checked and a malformed object is GW_ECORRUPT
 * naming it. Nothing past the links is parsed (authors, messages).
 */
#include "gitwal/odb.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <stdlib.h>
#include <string.h>

static int malformed(const char *kind, const gw_oid *id, const char *what)
{
	char hex[GW_HEX_MAX];
	return gw_error_set(GW_ECORRUPT, "%s %s is malformed: %s", kind, gw_oid_to_hex(hex, id), what);
}

/* "<key> <hex>\n" at *p: 1 and the id (p moved past the line), 0 when the line is not that key. */
static int id_line(const unsigned char **p, const unsigned char *end, const char *key, size_t hash_len, gw_oid *oid)
{
	size_t kl = strlen(key), hl = 2 * hash_len;
	char hex[GW_HEX_MAX];
	if ((size_t)(end - *p) < kl + 1 + hl + 1 || memcmp(*p, key, kl) || (*p)[kl] != ' ' || (*p)[kl + 1 + hl] != '\n')
		return 0;
	memcpy(hex, *p + kl + 1, hl);
	hex[hl] = '\0';
	if (gw_hex_decode(oid->id, hex, hash_len) < 0)
		return 0;
	oid->len = hash_len;
	*p += kl + 1 + hl + 1;
	return 1;
}

int gw_commit_parse(gw_commit_links *c, const unsigned char *data, size_t len, const gw_oid *id)
{
	const unsigned char *p = data, *end = data + len;
	size_t cap = 0;
	gw_oid parent;
	memset(c, 0, sizeof(*c));
	if (!id_line(&p, end, "tree", id->len, &c->tree))
		return malformed("commit", id, "no tree line first");
	memset(&parent, 0, sizeof(parent));
	while (id_line(&p, end, "parent", id->len, &parent)) {
		if (GW_ARRAY_RESERVE(c->parents, cap, c->nparents + 1) < 0) {
			gw_commit_links_dispose(c);
			return GW_ERROR;
		}
		c->parents[c->nparents++] = parent;
	}
	/* A parent line that did not parse (a bad id) is damage, not the end of the parents. */
	if ((size_t)(end - p) >= 7 && !memcmp(p, "parent ", 7)) {
		gw_commit_links_dispose(c);
		return malformed("commit", id, "bad parent line");
	}
	return 0;
}

void gw_commit_links_dispose(gw_commit_links *c)
{
	free(c->parents);
	memset(c, 0, sizeof(*c));
}

int gw_tag_parse(gw_oid *target, gw_object_t *target_type, const unsigned char *data, size_t len, const gw_oid *id)
{
	const unsigned char *p = data, *end = data + len, *nl;
	gw_object_t t;
	if (!id_line(&p, end, "object", id->len, target))
		return malformed("tag", id, "no object line first");
	if ((size_t)(end - p) < 5 || memcmp(p, "type ", 5) || !(nl = memchr(p + 5, '\n', (size_t)(end - p - 5))))
		return malformed("tag", id, "no type line after the object line");
	for (t = GW_OBJECT_COMMIT; t <= GW_OBJECT_TAG; t++)
		if ((size_t)(nl - p - 5) == strlen(gw_object_type_name(t)) &&
		    !memcmp(p + 5, gw_object_type_name(t), (size_t)(nl - p - 5)))
			break;
	if (t > GW_OBJECT_TAG)
		return malformed("tag", id, "unknown target type");
	*target_type = t;
	return 0;
}

void gw_tree_iter_init(gw_tree_iter *it, const unsigned char *data, size_t len, const gw_oid *id)
{
	it->p = data;
	it->end = data + len;
	it->id = id;
}

int gw_tree_next(gw_tree_iter *it, gw_tree_entry *e)
{
	const unsigned char *p = it->p, *nul;
	size_t hl = it->id->len, digits = 0;
	if (p == it->end)
		return 0;
	/* "<octal mode> <name>\0<raw id>" */
	e->mode = 0;
	while (p < it->end && *p >= '0' && *p <= '7' && digits < 7) {
		e->mode = e->mode << 3 | (uint32_t)(*p++ - '0');
		digits++;
	}
	if (!digits || p == it->end || *p != ' ')
		return malformed("tree", it->id, "bad entry mode");
	p++;
	if (!(nul = memchr(p, '\0', (size_t)(it->end - p))) || nul == p)
		return malformed("tree", it->id, "bad entry name");
	e->name = (const char *)p;
	e->name_len = (size_t)(nul - p);
	p = nul + 1;
	if ((size_t)(it->end - p) < hl)
		return malformed("tree", it->id, "truncated entry id");
	gw_oid_from_raw(&e->oid, p, hl);
	it->p = p + hl;
	return 1;
}

gw_object_t gw_tree_entry_type(uint32_t mode)
{
	switch (mode & 0170000) {
	case 0040000:
		return GW_OBJECT_TREE;
	case 0160000:
		return GW_OBJECT_COMMIT;
	case 0100000:
	case 0120000:
		return GW_OBJECT_BLOB;
	default:
		return GW_OBJECT_INVALID;
	}
}

int gw_odb_links(gw_odb *odb, const gw_oid *oid, gw_object_t *type_out, gw_odb_link_cb cb, void *payload)
{
	gw_object_t type;
	unsigned char *data = NULL;
	size_t len;
	int rc;
	if ((rc = gw_odb_read(odb, oid, &type, &data, &len)) < 0)
		return rc;
	if (type_out)
		*type_out = type;
	switch (type) {
	case GW_OBJECT_COMMIT: {
		gw_commit_links c;
		size_t i;
		if ((rc = gw_commit_parse(&c, data, len, oid)) < 0)
			break;
		rc = cb(payload, c.tree.id, 0, 0);
		for (i = 0; rc == 0 && i < c.nparents; i++)
			rc = cb(payload, c.parents[i].id, 1, 0);
		gw_commit_links_dispose(&c);
		break;
	}
	case GW_OBJECT_TREE: {
		gw_tree_iter it;
		gw_tree_entry e;
		gw_tree_iter_init(&it, data, len, oid);
		while (rc == 0 && (rc = gw_tree_next(&it, &e)) == 1) {
			gw_object_t t = gw_tree_entry_type(e.mode);
			rc = t == GW_OBJECT_COMMIT ? 0 : cb(payload, e.oid.id, 0, t == GW_OBJECT_BLOB);
		}
		break;
	}
	case GW_OBJECT_TAG: {
		gw_oid target;
		gw_object_t t;
		if ((rc = gw_tag_parse(&target, &t, data, len, oid)) == 0)
			rc = cb(payload, target.id, 1, 0);
		break;
	}
	default:
		break;
	}
	free(data);
	return rc < 0 ? rc : 0;
}
