/*
 * The parts of the s3:// driver that need no server, so they run (and are
 * never skipped) everywhere: the store URL and its parameters, credentials
 * files (s3_config.c), the canonical query and encoding libcurl's SigV4
 * signing relies on, dates (s3_http.c), and the XML answers: listings with
 * their continuation markers, and what a malformed or incomplete answer gives
 * (s3_xml.c). test_store_s3.c runs the driver against a real server.
 */
#include "testutil.h"

#include "gitwal/store.h"
#include "store/s3.h"

#include <sys/stat.h>

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define NS " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define XML(s) (const unsigned char *)(s), strlen(s)

static void test_url_parameters(void **state)
{
	gw_store *store;
	s3_config cfg;
	char *url;
	(void)state;

	assert_int_equal(gw_store_open(&store, "s3://bucket/p?secret_key=hunter2hunter2"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "unknown parameter 'secret_key'"));
	assert_null(strstr(gw_error_message(), "hunter2"));
	assert_int_equal(gw_store_open(&store, "s3://AKIA:hunter2hunter2@bucket/p"), GW_EINVALID);
	assert_null(strstr(gw_error_message(), "hunter2"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?lock=compliance"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "needs retain="));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?lock=forever&retain=1d"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?lock=governance&retain=10y"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "retain='10y' is not a period"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?lock=governance&retain=1500ms"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "retain='1500ms' is not whole seconds"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?lock=governance&retain=36501d"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?retries=99"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?ca_file=/nonexistent/ca.pem"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://Bad_Bucket/p"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/.hidden"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?upload_max_age=0h"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "upload_max_age='0h'"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?upload_max_age=12"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?upload_max_age=1w"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?parallel=0"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "parallel='0' is not a number from 1 to 16"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?parallel=17"), GW_EINVALID);
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?parallel=2x"), GW_EINVALID);
	assert_int_equal(s3_config_parse(&cfg, "bucket?parallel=7"), 0);
	assert_int_equal(cfg.parallel, 7);
	url = s3_config_url(&cfg);
	assert_non_null(strstr(url, "&parallel=7"));
	free(url);
	s3_config_dispose(&cfg);
	assert_int_equal(s3_config_parse(&cfg, "bucket?upload_max_age=90m"), 0);
	assert_int_equal(cfg.upload_max_age, 90 * 60);
	url = s3_config_url(&cfg);
	assert_non_null(strstr(url, "&upload_max_age=5400s"));
	free(url);
	s3_config_dispose(&cfg);
	assert_int_equal(s3_config_parse(&cfg, "bucket"), 0);
	assert_int_equal(cfg.upload_max_age, 24 * 3600);
	assert_int_equal(cfg.connect_timeout_ms, 5000);
	assert_int_equal(cfg.first_byte_timeout_ms, 10000);
	assert_int_equal(cfg.stall_timeout_ms, 5000);
	assert_int_equal(cfg.deadline_ms, 60000);
	assert_int_equal(cfg.parallel, S3_DEFAULT_PARALLEL);
	s3_config_dispose(&cfg);

	/* Time limits: a number and its unit, within bounds. */
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?stall_timeout=0s"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "stall_timeout='0s' is not a period"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?first_byte_timeout=5"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "first_byte_timeout='5'"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?deadline=50ms"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "from 100ms"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?connect_timeout=11m"), GW_EINVALID);
	assert_non_null(strstr(gw_error_message(), "to 600s"));
	assert_int_equal(gw_store_open(&store, "s3://bucket/p?deadline=-3s"), GW_EINVALID);
	assert_int_equal(s3_config_parse(&cfg, "bucket?stall_timeout=1500ms&deadline=2m&connect_timeout=2s"
					       "&first_byte_timeout=1h"), 0);
	assert_int_equal(cfg.stall_timeout_ms, 1500);
	assert_int_equal(cfg.deadline_ms, 120000);
	assert_int_equal(cfg.connect_timeout_ms, 2000);
	assert_int_equal(cfg.first_byte_timeout_ms, 3600000);
	url = s3_config_url(&cfg);
	assert_non_null(strstr(url, "&connect_timeout=2000ms&first_byte_timeout=3600000ms&stall_timeout=1500ms"
				    "&deadline=120000ms"));
	free(url);
	s3_config_dispose(&cfg);

	/* AWS defaults: the regional endpoint, virtual-host style. */
	unsetenv("AWS_ENDPOINT_URL_S3");
	assert_int_equal(s3_config_parse(&cfg, "bucket/a/b/?region=eu-west-3&lock=governance&retain=36h&retries=2"), 0);
	assert_string_equal(cfg.endpoint, "https://s3.eu-west-3.amazonaws.com");
	assert_string_equal(cfg.prefix, "a/b");
	assert_int_equal(cfg.path_style, 0);
	assert_int_equal(cfg.retain_seconds, 36 * 3600);
	url = s3_config_url(&cfg);
	assert_string_equal(url, "s3://bucket/a/b?endpoint=https://s3.eu-west-3.amazonaws.com&region=eu-west-3"
				 "&path_style=false&lock=governance&retain=36h&retries=2");
	free(url);
	s3_config_dispose(&cfg);
	/* A retention of seconds (tests of expiry on a locked bucket) reads back as itself. */
	assert_int_equal(s3_config_parse(&cfg, "bucket?region=eu-west-3&lock=compliance&retain=90s"), 0);
	assert_int_equal(cfg.retain_seconds, 90);
	url = s3_config_url(&cfg);
	assert_non_null(strstr(url, "&lock=compliance&retain=90s"));
	free(url);
	s3_config_dispose(&cfg);
	setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.2:9000/", 1);
	setenv("AWS_REGION", "ap-south-1", 1);
	assert_int_equal(s3_config_parse(&cfg, "bucket"), 0);
	assert_string_equal(cfg.endpoint, "http://127.0.0.2:9000");
	assert_string_equal(cfg.region, "ap-south-1");
	assert_string_equal(cfg.prefix, "");
	s3_config_dispose(&cfg);
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_REGION");
}

/* What libcurl's SigV4 signing leaves to the driver: the canonical query and the encoding. */
static void test_canonical_query(void **state)
{
	s3_buf b = {0};
	(void)state;
	/* Sorted by name, each with '=', values encoded. */
	{
		s3_param p[3] = {{"prefix", "a/b+c=d"}, {"versions", NULL}, {"key-marker", "x y"}};
		char *q = s3_query_build(p, 3);
		assert_string_equal(q, "key-marker=x%20y&prefix=a%2Fb%2Bc%3Dd&versions=");
		free(q);
	}
	/* RFC 3986 unreserved characters stay, everything else is %XX in uppercase; '/' only on request. */
	assert_int_equal(s3_uri_encode(&b, "Az09-_.~/é%", 0), 0);
	assert_int_equal(s3_buf_append(&b, "|", 1), 0);
	assert_int_equal(s3_uri_encode(&b, "repos/a b.git/", 1), 0);
	assert_int_equal(s3_buf_append(&b, "", 1), 0);
	assert_string_equal((const char *)b.data, "Az09-_.~%2F%C3%A9%25|repos/a%20b.git/");
	s3_buf_dispose(&b);
	/* A buffer with a bound refuses to pass it. */
	b.max = 4;
	assert_int_equal(s3_buf_append(&b, "abcd", 4), 0);
	assert_int_equal(s3_buf_append(&b, "e", 1), GW_ERROR);
	assert_int_equal(b.len, 4);
	s3_buf_dispose(&b);
}

static void test_dates(void **state)
{
	char text[32];
	(void)state;
	assert_int_equal(s3_parse_iso8601("2026-12-01T00:00:00Z"), 1796083200);
	assert_int_equal(s3_parse_iso8601("2026-12-01T00:00:01.123Z"), 1796083201);
	assert_int_equal(s3_parse_iso8601("yesterday"), 0);
	assert_int_equal(s3_parse_iso8601(NULL), 0);
	assert_int_equal(s3_parse_http_date("Tue, 01 Dec 2026 00:00:00 GMT"), 1796083200);
	assert_int_equal(s3_parse_http_date("2026-12-01"), 0);
	s3_format_iso8601(text, sizeof(text), 1796083200);
	assert_string_equal(text, "2026-12-01T00:00:00Z");
}

/* A credentials file (mode 0600 required), read when the environment has no keys. */
static void test_credentials_file(void **state)
{
	char dir[128], path[200];
	s3_credentials cred;
	char *key = getenv("AWS_ACCESS_KEY_ID") ? strdup(getenv("AWS_ACCESS_KEY_ID")) : NULL;
	char *secret = getenv("AWS_SECRET_ACCESS_KEY") ? strdup(getenv("AWS_SECRET_ACCESS_KEY")) : NULL;
	static const char text[] = "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
				   "# a comment\n[gitwal]\n  aws_access_key_id = AKIAGITWAL \naws_secret_access_key=s3cr3t\n"
				   "aws_session_token = tok\n";
	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/credentials", dir);
	tu_write_file(path, text, sizeof(text) - 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_PROFILE", "gitwal", 1);

	chmod(path, 0644);
	assert_int_equal(s3_credentials_load(&cred), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "has mode 0644"));
	assert_non_null(strstr(gw_error_message(), "chmod 600"));
	assert_null(strstr(gw_error_message(), "s3cr3t"));

	chmod(path, 0600);
	assert_int_equal(s3_credentials_load(&cred), 0);
	assert_string_equal(cred.access_key, "AKIAGITWAL");
	assert_string_equal(cred.secret_key, "s3cr3t");
	assert_string_equal(cred.session_token, "tok");
	assert_string_equal(cred.userpwd, "AKIAGITWAL:s3cr3t");
	s3_credentials_dispose(&cred);
	unsetenv("AWS_PROFILE");
	assert_int_equal(s3_credentials_load(&cred), 0);
	assert_string_equal(cred.access_key, "nobody");
	s3_credentials_dispose(&cred);

	setenv("AWS_PROFILE", "absent", 1);
	assert_int_equal(s3_credentials_load(&cred), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "no [absent] profile"));
	unlink(path);
	assert_int_equal(s3_credentials_load(&cred), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "no S3 credentials"));

	/* The environment comes first. */
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(s3_credentials_load(&cred), 0);
	assert_string_equal(cred.userpwd, "AKIAENV:envsecret");
	assert_null(cred.session_token);
	s3_credentials_dispose(&cred);
	setenv("AWS_ACCESS_KEY_ID", "AKIA:ENV", 1);
	assert_int_equal(s3_credentials_load(&cred), GW_EAUTH);
	assert_non_null(strstr(gw_error_message(), "contains ':'"));

	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	if (key)
		setenv("AWS_ACCESS_KEY_ID", key, 1);
	else
		unsetenv("AWS_ACCESS_KEY_ID");
	if (secret)
		setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	else
		unsetenv("AWS_SECRET_ACCESS_KEY");
	free(key);
	free(secret);
	tu_rmrf(dir);
}

/* ---- XML answers ---- */

typedef struct {
	char seen[1024]; /* "key:value;" per entry */
	int stop_at;     /* return 9 at this entry (1-based; 0: never) */
	int n;
} entries;

static int note(entries *e, const char *key, const char *value)
{
	size_t at = strlen(e->seen);
	snprintf(e->seen + at, sizeof(e->seen) - at, "%s:%s;", key, value);
	return ++e->n == e->stop_at ? 9 : 0;
}

static int on_object(const char *key, uint64_t size, void *payload)
{
	char v[32];
	snprintf(v, sizeof(v), "%llu", (unsigned long long)size);
	return note(payload, key, v);
}

static int on_version(const char *key, const char *id, int delete_marker, void *payload)
{
	char v[160];
	snprintf(v, sizeof(v), "%s%s", id, delete_marker ? "(deleted)" : "");
	return note(payload, key, v);
}

static int on_upload(const char *key, const char *id, int64_t initiated, void *payload)
{
	char v[160];
	snprintf(v, sizeof(v), "%s@%lld", id, (long long)initiated);
	return note(payload, key, v);
}

static void test_xml_text_and_errors(void **state)
{
	char *text;
	(void)state;
	assert_int_equal(s3_xml_text(XML(XML_HEAD "<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>"),
				     "Code", &text), 0);
	assert_string_equal(text, "SignatureDoesNotMatch");
	free(text);
	/* Found at any depth, namespaced or not; absent: NULL. */
	assert_int_equal(s3_xml_text(XML("<A" NS "><B><UploadId>u-1</UploadId></B></A>"), "UploadId", &text), 0);
	assert_string_equal(text, "u-1");
	free(text);
	assert_int_equal(s3_xml_text(XML("<A><B/></A>"), "UploadId", &text), 0);
	assert_null(text);
	assert_int_equal(s3_xml_text(XML("<A><Empty></Empty></A>"), "Empty", &text), 0);
	assert_string_equal(text, "");
	free(text);
	/* Malformed: GW_ECORRUPT naming its size. */
	tu_assert_err(s3_xml_text(XML("<Error><Code>x</Error>"), "Code", &text), GW_ECORRUPT, "malformed XML (22 bytes)");
	assert_null(text);
	tu_assert_err(s3_xml_text(XML(""), "Code", &text), GW_ECORRUPT, "malformed XML");
	/* An external entity is never fetched nor expanded. */
	assert_int_equal(s3_xml_text(XML("<!DOCTYPE A [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><A><C>&x;</C></A>"), "C",
				     &text), 0);
	assert_null(strstr(text, "root:"));
	free(text);
}

static void test_xml_list_objects(void **state)
{
	entries e = {0};
	int truncated = 7;
	char *token = (char *)"stale";
	(void)state;
	assert_int_equal(s3_xml_list_objects(XML(XML_HEAD "<ListBucketResult" NS "><Name>b</Name>"
						 "<Contents><Key>a/1</Key><Size>10</Size></Contents>"
						 "<Contents><Key>a/2</Key><Size>18446744073709551615</Size></Contents>"
						 "<Contents><Key>a/3</Key></Contents>"
						 "<IsTruncated>true</IsTruncated>"
						 "<NextContinuationToken>tok==</NextContinuationToken>"
						 "</ListBucketResult>"),
					     on_object, &e, &truncated, &token), 0);
	assert_string_equal(e.seen, "a/1:10;a/2:18446744073709551615;a/3:0;");
	assert_int_equal(truncated, 1);
	assert_string_equal(token, "tok==");
	free(token);
	/* The last page. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_list_objects(XML("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"),
					     on_object, &e, &truncated, &token), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(truncated, 0);
	assert_null(token);
	/* The callback's value stops the walk and is returned. */
	e.stop_at = 1;
	assert_int_equal(s3_xml_list_objects(XML("<L><Contents><Key>x</Key></Contents><Contents><Key>y</Key></Contents></L>"),
					     on_object, &e, &truncated, &token), 9);
	assert_string_equal(e.seen, "x:0;");
	/* Incomplete answers. */
	tu_assert_err(s3_xml_list_objects(XML("<L><IsTruncated>true</IsTruncated></L>"), on_object, &e, &truncated, &token),
		      GW_ECORRUPT, "the S3 listing is truncated but has no NextContinuationToken");
	tu_assert_err(s3_xml_list_objects(XML("<L><Contents><Size>1</Size></Contents></L>"), on_object, &e, &truncated,
					  &token),
		      GW_ECORRUPT, "the S3 listing has an entry without a Key");
	tu_assert_err(s3_xml_list_objects(XML("<L><Contents>"), on_object, &e, &truncated, &token), GW_ECORRUPT,
		      "malformed XML");
}

static int list_versions(const char *xml, entries *e, int *truncated, char **key, char **version)
{
	return s3_xml_list_versions(XML(xml), on_version, e, truncated, key, version);
}

static int list_uploads(const char *xml, entries *e, int *truncated, char **key, char **upload)
{
	return s3_xml_list_uploads(XML(xml), on_upload, e, truncated, key, upload);
}

/* Versions and uploads: entries, and two markers, the first of which a truncated page must have. */
static void test_xml_two_marker_listings(void **state)
{
	static const struct {
		int (*list)(const char *xml, entries *e, int *truncated, char **m1, char **m2);
		const char *page, *seen, *m1, *m2;
		const char *unmarked, *unmarked_error; /* truncated without the first marker */
		const char *bad_entry, *bad_entry_error;
	} cases[] = {
		{list_versions,
		 "<ListVersionsResult" NS "><Version><Key>k</Key><VersionId>v2</VersionId></Version>"
		 "<DeleteMarker><Key>k</Key><VersionId>v3</VersionId></DeleteMarker><Version><Key>m</Key></Version>"
		 "<IsTruncated>true</IsTruncated><NextKeyMarker>m</NextKeyMarker>"
		 "<NextVersionIdMarker>v9</NextVersionIdMarker></ListVersionsResult>",
		 "k:v2;k:v3(deleted);m:null;", "m", "v9",
		 "<L><IsTruncated>true</IsTruncated><NextVersionIdMarker>v</NextVersionIdMarker></L>",
		 "the S3 version listing is truncated but has no NextKeyMarker",
		 "<L><DeleteMarker><VersionId>v</VersionId></DeleteMarker></L>",
		 "the S3 version listing has an entry without a Key"},
		{list_uploads,
		 "<ListMultipartUploadsResult" NS "><Upload><Key>p/a</Key><UploadId>u1</UploadId>"
		 "<Initiated>2026-12-01T00:00:00.000Z</Initiated></Upload><Upload><Key>p/b</Key><UploadId>u2</UploadId>"
		 "</Upload><IsTruncated>true</IsTruncated><NextKeyMarker>p/b</NextKeyMarker>"
		 "<NextUploadIdMarker>u2</NextUploadIdMarker></ListMultipartUploadsResult>",
		 "p/a:u1@1796083200;p/b:u2@0;", "p/b", "u2",
		 "<L><IsTruncated>true</IsTruncated><NextUploadIdMarker>u</NextUploadIdMarker></L>",
		 "the S3 upload listing is truncated but has no NextKeyMarker",
		 "<L><Upload><Key>p/a</Key><UploadId></UploadId></Upload></L>",
		 "the S3 upload listing has an entry without a Key or UploadId"},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		entries e = {0};
		int truncated;
		char *m1, *m2;
		assert_int_equal(cases[i].list(cases[i].page, &e, &truncated, &m1, &m2), 0);
		assert_string_equal(e.seen, cases[i].seen);
		assert_int_equal(truncated, 1);
		assert_string_equal(m1, cases[i].m1);
		assert_string_equal(m2, cases[i].m2);
		free(m1);
		free(m2);
		tu_assert_err(cases[i].list(cases[i].unmarked, &e, &truncated, &m1, &m2), GW_ECORRUPT,
			      cases[i].unmarked_error);
		free(m2);
		tu_assert_err(cases[i].list(cases[i].bad_entry, &e, &truncated, &m1, &m2), GW_ECORRUPT,
			      cases[i].bad_entry_error);
	}
}

static void test_xml_list_parts(void **state)
{
	uint64_t bytes = 5;
	int truncated;
	char *marker;
	(void)state;
	assert_int_equal(s3_xml_list_parts(XML("<ListPartsResult" NS "><Part><PartNumber>1</PartNumber><Size>8388608</Size></Part>"
					       "<Part><PartNumber>2</PartNumber><Size>100</Size></Part><Part/>"
					       "<IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>"
					       "</ListPartsResult>"),
					   &bytes, &truncated, &marker), 0);
	assert_int_equal(bytes, 5 + 8388608 + 100); /* added to what was there */
	assert_int_equal(truncated, 1);
	assert_string_equal(marker, "2");
	free(marker);
	tu_assert_err(s3_xml_list_parts(XML("<L><IsTruncated>true</IsTruncated></L>"), &bytes, &truncated, &marker),
		      GW_ECORRUPT, "the S3 part listing is truncated but has no NextPartNumberMarker");
}

static int on_delete_error(const char *key, const char *id, const char *code, const char *message, void *payload)
{
	char v[160];
	snprintf(v, sizeof(v), "%s/%s/%s", id ? id : "-", code, message);
	return note(payload, key, v);
}

/* DeleteObjects: the refusals (Deleted entries skipped), and what is not a DeleteResult. */
static void test_xml_delete_result(void **state)
{
	entries e;
	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_delete_result(XML(XML_HEAD "<DeleteResult" NS "><Deleted><Key>a</Key></Deleted>"
							    "<Error><Key>b</Key><VersionId>v1</VersionId><Code>AccessDenied</Code>"
							    "<Message>locked</Message></Error>"
							    "<Error><Key>c</Key><Code>InternalError</Code></Error>"
							    "<Error><Key>d</Key><VersionId></VersionId><Code>X</Code></Error>"
							    "</DeleteResult>"),
						  on_delete_error, &e),
			 0);
	assert_string_equal(e.seen, "b:v1/AccessDenied/locked;c:-/InternalError/;d:-/X/;");
	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_delete_result(XML("<DeleteResult/>"), on_delete_error, &e), 0);
	assert_int_equal(e.n, 0);
	/* The callback stops it. */
	e.stop_at = 1;
	assert_int_equal(s3_xml_delete_result(XML("<DeleteResult><Error><Key>b</Key><Code>X</Code></Error>"
						  "<Error><Key>c</Key><Code>X</Code></Error></DeleteResult>"),
					      on_delete_error, &e),
			 9);
	assert_int_equal(e.n, 1);
	tu_assert_err(s3_xml_delete_result(XML(XML_HEAD "<Error><Code>AccessDenied</Code></Error>"), on_delete_error, &e),
		      GW_ECORRUPT, "answered DeleteObjects with <Error>, not <DeleteResult>");
	tu_assert_err(s3_xml_delete_result(XML("<DeleteResult><Error><Code>X</Code></Error></DeleteResult>"),
					   on_delete_error, &e),
		      GW_ECORRUPT, "an Error without a Key or Code");
	tu_assert_err(s3_xml_delete_result(XML("<DeleteResult><Error><Key>k</Key></Error></DeleteResult>"),
					   on_delete_error, &e),
		      GW_ECORRUPT, "an Error without a Key or Code");
	tu_assert_err(s3_xml_delete_result(XML("<DeleteResult><Error>"), on_delete_error, &e), GW_ECORRUPT,
		      "malformed XML");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parameters),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_credentials_file),
		cmocka_unit_test(test_xml_text_and_errors),
		cmocka_unit_test(test_xml_list_objects),
		cmocka_unit_test(test_xml_two_marker_listings),
		cmocka_unit_test(test_xml_list_parts),
		cmocka_unit_test(test_xml_delete_result),
	};
	return tu_run_tests(tests);
}
