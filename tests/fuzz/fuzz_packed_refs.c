/*
 * libFuzzer target: the packed-refs parser (gw_packed_refs_parse) on
 * arbitrary bytes. What it accepts must be refs with valid names under
 * refs/, sorted and unique, each name NUL-terminated inside the parsed text;
 * written out again the way git writes the file, it must parse to the same
 * refs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/refs_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gw_packed_refs *p = (gw_packed_refs *)1, *q = NULL;
	char *text, *at;
	size_t i, len = 64;
	int rc = gw_packed_refs_parse(&p, (const char *)data, size, 20, "fuzz");

	if (rc > 0)
		abort();
	if (rc < 0) {
		if (p)
			abort();
		return 0;
	}
	if (!p || p->holders != 1)
		abort();
	for (i = 0; i < p->n; i++) {
		const char *name = p->refs[i].name;
		if (name < p->text || name >= p->text + size || name + strlen(name) >= p->text + size + 1)
			abort();
		if (!gw_ref_name_valid(name) || (i && strcmp(p->refs[i - 1].name, name) >= 0))
			abort();
		len += 42 + strlen(name);
	}
	/* The round trip. */
	if (!(text = malloc(len)))
		abort();
	at = text + sprintf(text, "# pack-refs with: peeled fully-peeled sorted \n");
	for (i = 0; i < p->n; i++) {
		gw_hex_encode(at, p->refs[i].oid, 20);
		at += 40;
		at += sprintf(at, " %s\n", p->refs[i].name);
	}
	if (gw_packed_refs_parse(&q, text, (size_t)(at - text), 20, "fuzz round trip") != 0 || q->n != p->n)
		abort();
	for (i = 0; i < p->n; i++)
		if (strcmp(p->refs[i].name, q->refs[i].name) != 0 || memcmp(p->refs[i].oid, q->refs[i].oid, 20) != 0)
			abort();
	gw_packed_refs_release(q);
	gw_packed_refs_release(p);
	free(text);
	return 0;
}
