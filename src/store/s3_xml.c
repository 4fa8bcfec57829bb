/*
 * The XML answers of S3 (errors, listings, multipart, bucket settings), read
 * with libxml2. Elements are matched by local name, so the S3 namespace (or
 * its absence, as on some servers) makes no difference. The parser never
 * fetches anything from the network and never expands external entities.
 */
#include "store/s3.h"
#include "gitwal/error.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

static int parse(const unsigned char *xml, size_t len, xmlDocPtr *out)
{
	if (len > (size_t)INT32_MAX ||
	    !(*out = xmlReadMemory((const char *)xml, (int)len, "s3.xml", NULL,
				   XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)))
		return gw_error_set(GW_ECORRUPT, "the S3 server answered with malformed XML (%zu bytes)", len);
	return 0;
}

static int is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xmlNode *find(xmlNode *n, const char *name)
{
	for (; n; n = n->next) {
		xmlNode *found;
		if (is(n, name))
			return n;
		if ((found = find(n->children, name)))
			return found;
	}
	return NULL;
}

/* The element's text as a malloc'd string ("" when empty). */
static char *text_of(const xmlNode *n)
{
	xmlChar *c = xmlNodeGetContent(n);
	char *s = strdup(c ? (const char *)c : "");
	xmlFree(c);
	return s;
}

int s3_xml_text(const unsigned char *xml, size_t len, const char *name, char **out)
{
	xmlDocPtr doc;
	xmlNode *n;
	int rc;

	*out = NULL;
	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	if ((n = find(xmlDocGetRootElement(doc), name)) && !(*out = text_of(n)))
		rc = gw_error_set(GW_ERROR, "out of memory");
	xmlFreeDoc(doc);
	return rc;
}

/* The text of child `name` of n, without copying; NULL when absent. */
static xmlChar *child_text(xmlNode *n, const char *name)
{
	for (n = n->children; n; n = n->next)
		if (is(n, name))
			return xmlNodeGetContent(n);
	return NULL;
}

/*
 * The one shape of a listing answer (objects, versions, uploads, parts):
 * entries, <IsTruncated>, and continuation markers, the first of which a
 * truncated answer must have. Each entry goes to entry(); each marker's text
 * to *markers[i] (NULL when absent).
 */
typedef struct {
	const char *what;           /* "listing", "version listing", ...: for messages */
	const char *entry, *entry2; /* the entries' element names (entry2 may be NULL) */
	const char *marker_names[2];
	char **markers[2];          /* where the markers go (unused ones NULL) */
	int (*entry_cb)(xmlNode *n, void *ctx);
	void *ctx;
} listing;

static int read_listing(const unsigned char *xml, size_t len, const listing *l, int *truncated)
{
	xmlDocPtr doc;
	xmlNode *n;
	size_t i;
	int rc;

	*truncated = 0;
	for (i = 0; i < 2; i++)
		if (l->markers[i])
			*l->markers[i] = NULL;
	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	for (n = xmlDocGetRootElement(doc)->children; n && rc == 0; n = n->next) {
		if (is(n, l->entry) || (l->entry2 && is(n, l->entry2))) {
			rc = l->entry_cb(n, l->ctx);
		} else if (is(n, "IsTruncated")) {
			xmlChar *v = xmlNodeGetContent(n);
			*truncated = v && !strcmp((const char *)v, "true");
			xmlFree(v);
		} else {
			for (i = 0; i < 2; i++)
				if (l->markers[i] && is(n, l->marker_names[i])) {
					free(*l->markers[i]);
					if (!(*l->markers[i] = text_of(n)))
						rc = gw_error_set(GW_ERROR, "out of memory");
				}
		}
	}
	xmlFreeDoc(doc);
	if (rc == 0 && *truncated && !*l->markers[0])
		rc = gw_error_set(GW_ECORRUPT, "the S3 %s is truncated but has no %s", l->what, l->marker_names[0]);
	return rc;
}

static uint64_t size_of(const xmlChar *size)
{
	return size ? strtoull((const char *)size, NULL, 10) : 0;
}

/* The caller's callback (held as a generic function pointer, called as its own type) and payload. */
typedef struct {
	void (*cb)(void);
	void *payload;
} entry_ctx;

static int object_entry(xmlNode *n, void *ctx)
{
	entry_ctx *c = ctx;
	s3_xml_object_cb cb = (s3_xml_object_cb)c->cb;
	xmlChar *key = child_text(n, "Key"), *size = child_text(n, "Size");
	int rc = !key ? gw_error_set(GW_ECORRUPT, "the S3 listing has an entry without a Key")
		      : cb((const char *)key, size_of(size), c->payload);
	xmlFree(key);
	xmlFree(size);
	return rc;
}

int s3_xml_list_objects(const unsigned char *xml, size_t len, s3_xml_object_cb cb, void *payload, int *truncated,
			char **next_token)
{
	entry_ctx c = {(void (*)(void))cb, payload};
	listing l = {"listing", "Contents", NULL, {"NextContinuationToken"}, {next_token}, object_entry, &c};
	return read_listing(xml, len, &l, truncated);
}

static int version_entry(xmlNode *n, void *ctx)
{
	entry_ctx *c = ctx;
	s3_xml_version_cb cb = (s3_xml_version_cb)c->cb;
	xmlChar *key = child_text(n, "Key"), *id = child_text(n, "VersionId");
	int rc = !key ? gw_error_set(GW_ECORRUPT, "the S3 version listing has an entry without a Key")
		      : cb((const char *)key, id ? (const char *)id : "null", is(n, "DeleteMarker"), c->payload);
	xmlFree(key);
	xmlFree(id);
	return rc;
}

int s3_xml_list_versions(const unsigned char *xml, size_t len, s3_xml_version_cb cb, void *payload, int *truncated,
			 char **next_key, char **next_version)
{
	entry_ctx c = {(void (*)(void))cb, payload};
	listing l = {"version listing", "Version", "DeleteMarker", {"NextKeyMarker", "NextVersionIdMarker"},
		     {next_key, next_version}, version_entry, &c};
	return read_listing(xml, len, &l, truncated);
}

static int upload_entry(xmlNode *n, void *ctx)
{
	entry_ctx *c = ctx;
	s3_xml_upload_cb cb = (s3_xml_upload_cb)c->cb;
	xmlChar *key = child_text(n, "Key"), *id = child_text(n, "UploadId"), *initiated = child_text(n, "Initiated");
	int rc = !key || !id || !*id
			 ? gw_error_set(GW_ECORRUPT, "the S3 upload listing has an entry without a Key or UploadId")
			 : cb((const char *)key, (const char *)id,
			      initiated ? s3_parse_iso8601((const char *)initiated) : 0, c->payload);
	xmlFree(key);
	xmlFree(id);
	xmlFree(initiated);
	return rc;
}

int s3_xml_list_uploads(const unsigned char *xml, size_t len, s3_xml_upload_cb cb, void *payload, int *truncated,
			char **next_key, char **next_upload)
{
	entry_ctx c = {(void (*)(void))cb, payload};
	listing l = {"upload listing", "Upload", NULL, {"NextKeyMarker", "NextUploadIdMarker"},
		     {next_key, next_upload}, upload_entry, &c};
	return read_listing(xml, len, &l, truncated);
}

static int part_entry(xmlNode *n, void *ctx)
{
	xmlChar *size = child_text(n, "Size");
	*(uint64_t *)ctx += size_of(size);
	xmlFree(size);
	return 0;
}

int s3_xml_list_parts(const unsigned char *xml, size_t len, uint64_t *bytes, int *truncated, char **next_marker)
{
	listing l = {"part listing", "Part", NULL, {"NextPartNumberMarker"}, {next_marker}, part_entry, bytes};
	return read_listing(xml, len, &l, truncated);
}

/*
 * DeleteObjects: each <Error> of a <DeleteResult> (a quiet request lists only
 * those; <Deleted> entries are skipped). Anything but a DeleteResult (an
 * <Error> document the status did not announce) is malformed: the caller
 * must not take the keys for removed.
 */
int s3_xml_delete_result(const unsigned char *xml, size_t len, s3_xml_delete_error_cb cb, void *payload)
{
	xmlDocPtr doc;
	xmlNode *n, *root;
	int rc;

	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "DeleteResult"))
		rc = gw_error_set(GW_ECORRUPT, "the S3 server answered DeleteObjects with <%s>, not <DeleteResult>",
				  root ? (const char *)root->name : "nothing");
	for (n = root ? root->children : NULL; n && rc == 0; n = n->next) {
		xmlChar *key, *id, *code, *msg;
		if (!is(n, "Error"))
			continue;
		key = child_text(n, "Key");
		id = child_text(n, "VersionId");
		code = child_text(n, "Code");
		msg = child_text(n, "Message");
		rc = !key || !code ? gw_error_set(GW_ECORRUPT, "the S3 DeleteObjects answer has an Error without a Key or Code")
				   : cb((const char *)key, id && *id ? (const char *)id : NULL, (const char *)code,
					msg ? (const char *)msg : "", payload);
		xmlFree(key);
		xmlFree(id);
		xmlFree(code);
		xmlFree(msg);
	}
	xmlFreeDoc(doc);
	return rc;
}
