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

/* <IsTruncated>: 1 when n is that element. */
static int read_truncated(xmlNode *n, int *truncated)
{
	xmlChar *v;
	if (!is(n, "IsTruncated"))
		return 0;
	v = xmlNodeGetContent(n);
	*truncated = v && !strcmp((const char *)v, "true");
	xmlFree(v);
	return 1;
}

/* A continuation value (a token or a marker): 1 when n is element `name`. */
static int read_marker(xmlNode *n, const char *name, char **dst)
{
	if (!is(n, name))
		return 0;
	free(*dst);
	return (*dst = text_of(n)) ? 1 : gw_error_set(GW_ERROR, "out of memory");
}

int s3_xml_list_objects(const unsigned char *xml, size_t len, s3_xml_object_cb cb, void *payload, int *truncated,
			char **next_token)
{
	xmlDocPtr doc;
	xmlNode *n;
	int rc;

	*truncated = 0;
	*next_token = NULL;
	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	for (n = xmlDocGetRootElement(doc)->children; n && rc == 0; n = n->next) {
		if (is(n, "Contents")) {
			xmlChar *key = child_text(n, "Key"), *size = child_text(n, "Size");
			if (!key)
				rc = gw_error_set(GW_ECORRUPT, "the S3 listing has an entry without a Key");
			else
				rc = cb((const char *)key, size ? strtoull((const char *)size, NULL, 10) : 0, payload);
			xmlFree(key);
			xmlFree(size);
		} else if (read_truncated(n, truncated)) {
			continue;
		} else if ((rc = read_marker(n, "NextContinuationToken", next_token)) > 0) {
			rc = 0;
		}
	}
	xmlFreeDoc(doc);
	if (rc == 0 && *truncated && !*next_token)
		rc = gw_error_set(GW_ECORRUPT, "the S3 listing is truncated but has no NextContinuationToken");
	return rc;
}

int s3_xml_list_versions(const unsigned char *xml, size_t len, s3_xml_version_cb cb, void *payload, int *truncated,
			 char **next_key, char **next_version)
{
	xmlDocPtr doc;
	xmlNode *n;
	int rc;

	*truncated = 0;
	*next_key = *next_version = NULL;
	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	for (n = xmlDocGetRootElement(doc)->children; n && rc == 0; n = n->next) {
		if (is(n, "Version") || is(n, "DeleteMarker")) {
			xmlChar *key = child_text(n, "Key"), *id = child_text(n, "VersionId");
			if (!key)
				rc = gw_error_set(GW_ECORRUPT, "the S3 version listing has an entry without a Key");
			else
				rc = cb((const char *)key, id ? (const char *)id : "null", is(n, "DeleteMarker"), payload);
			xmlFree(key);
			xmlFree(id);
		} else if (read_truncated(n, truncated)) {
			continue;
		} else if ((rc = read_marker(n, "NextKeyMarker", next_key)) == 0) {
			rc = read_marker(n, "NextVersionIdMarker", next_version);
		}
		if (rc > 0)
			rc = 0;
	}
	xmlFreeDoc(doc);
	if (rc == 0 && *truncated && !*next_key)
		rc = gw_error_set(GW_ECORRUPT, "the S3 version listing is truncated but has no NextKeyMarker");
	return rc;
}

int s3_xml_list_uploads(const unsigned char *xml, size_t len, s3_xml_upload_cb cb, void *payload, int *truncated,
			char **next_key, char **next_upload)
{
	xmlDocPtr doc;
	xmlNode *n;
	int rc;

	*truncated = 0;
	*next_key = *next_upload = NULL;
	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	for (n = xmlDocGetRootElement(doc)->children; n && rc == 0; n = n->next) {
		if (is(n, "Upload")) {
			xmlChar *key = child_text(n, "Key"), *id = child_text(n, "UploadId"),
				*initiated = child_text(n, "Initiated");
			if (!key || !id || !*id)
				rc = gw_error_set(GW_ECORRUPT, "the S3 upload listing has an entry without a Key or UploadId");
			else
				rc = cb((const char *)key, (const char *)id,
					initiated ? s3_parse_iso8601((const char *)initiated) : 0, payload);
			xmlFree(key);
			xmlFree(id);
			xmlFree(initiated);
		} else if (read_truncated(n, truncated)) {
			continue;
		} else if ((rc = read_marker(n, "NextKeyMarker", next_key)) == 0) {
			rc = read_marker(n, "NextUploadIdMarker", next_upload);
		}
		if (rc > 0)
			rc = 0;
	}
	xmlFreeDoc(doc);
	if (rc == 0 && *truncated && !*next_key)
		rc = gw_error_set(GW_ECORRUPT, "the S3 upload listing is truncated but has no NextKeyMarker");
	return rc;
}

int s3_xml_list_parts(const unsigned char *xml, size_t len, uint64_t *bytes, int *truncated, char **next_marker)
{
	xmlDocPtr doc;
	xmlNode *n;
	int rc;

	*truncated = 0;
	*next_marker = NULL;
	if ((rc = parse(xml, len, &doc)) < 0)
		return rc;
	for (n = xmlDocGetRootElement(doc)->children; n && rc == 0; n = n->next) {
		if (is(n, "Part")) {
			xmlChar *size = child_text(n, "Size");
			*bytes += size ? strtoull((const char *)size, NULL, 10) : 0;
			xmlFree(size);
		} else if (read_truncated(n, truncated)) {
			continue;
		} else if ((rc = read_marker(n, "NextPartNumberMarker", next_marker)) > 0) {
			rc = 0;
		}
	}
	xmlFreeDoc(doc);
	if (rc == 0 && *truncated && !*next_marker)
		rc = gw_error_set(GW_ECORRUPT, "the S3 part listing is truncated but has no NextPartNumberMarker");
	return rc;
}
