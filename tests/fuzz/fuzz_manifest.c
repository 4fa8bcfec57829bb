/*
 * libFuzzer target: gw_manifest_parse on arbitrary bytes. Whatever parses
 * must survive a write/parse round trip unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitwal/manifest.h"

static void fz_manifest_same_ref(const gw_manifest_ref *a, const gw_manifest_ref *b)
{
	if (strcmp(a->name, b->name) != 0 || strcmp(a->oid, b->oid) != 0 || !a->symbolic != !b->symbolic ||
	    (a->symbolic && strcmp(a->symbolic, b->symbolic) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gw_manifest m, again;
	char *text;
	size_t len, i;

	if (gw_manifest_parse(&m, (const char *)data, size, "fuzz") != 0)
		return 0;
	/* Every parsed manifest is one this build can write and read back. */
	if (gw_manifest_write(&m, &text, &len) != 0)
		abort();
	if (gw_manifest_parse(&again, text, len, "fuzz-roundtrip") != 0)
		abort();
	if (strcmp(m.repository, again.repository) != 0 || m.lsn != again.lsn || m.time_us != again.time_us ||
	    m.nrefs != again.nrefs || strcmp(m.bundle.key, again.bundle.key) != 0 || m.bundle.size != again.bundle.size ||
	    strcmp(m.bundle.sha256, again.bundle.sha256) != 0 || strcmp(m.idx.key, again.idx.key) != 0 ||
	    m.idx.size != again.idx.size || strcmp(m.idx.sha256, again.idx.sha256) != 0 ||
	    m.pack_offset != again.pack_offset || m.objects != again.objects ||
	    strcmp(m.pack_checksum, again.pack_checksum) != 0 || strcmp(m.object_format, again.object_format) != 0)
		abort();
	fz_manifest_same_ref(&m.head, &again.head);
	for (i = 0; i < m.nrefs; i++)
		fz_manifest_same_ref(&m.refs[i], &again.refs[i]);
	if (m.tool && strcmp(m.tool, again.tool) != 0)
		abort();
	gw_manifest_dispose(&again);
	gw_manifest_dispose(&m);
	free(text);
	return 0;
}
