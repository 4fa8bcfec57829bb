/*
 * The s3:// store URL and the credentials.
 *
 *   s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true|false
 *                         &lock=compliance|governance&retain=30d&ca_file=PATH&retries=N
 *                         &upload_max_age=24h&connect_timeout=5s&first_byte_timeout=10s
 *                         &stall_timeout=5s&deadline=60s&parallel=N]
 *
 * Credentials never come from the URL (a URL ends up in configs, process
 * lists and messages): only from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, or from a credentials file that only its owner can
 * read. Messages here name files and variables, never a secret's value.
 */
#include "store/s3.h"
#include "gitwal/error.h"
#include "gitwal/time.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int oom(void)
{
	return gw_error_set(GW_ERROR, "out of memory");
}

static int set_str(char **dst, const char *src, size_t n)
{
	free(*dst);
	*dst = strndup(src, n);
	return *dst ? 0 : oom();
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode in place (parameter values may be given encoded). */
static int percent_decode(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
			if (hi < 0 || lo < 0)
				return -1;
			*out++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
	return 0;
}

static int bucket_name_ok(const char *b, size_t n)
{
	size_t i;
	if (n < 3 || n > 63)
		return 0;
	for (i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' || b[i] == '.'))
			return 0;
	return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

static int parse_bool(const char *name, const char *v, int *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = 0;
	else
		return gw_error_set(GW_EINVALID, "store URL s3://: %s='%s' is not true or false", name, v);
	return 0;
}

/*
 * A duration (gw_duration_parse: "500ms", "30s", "90m", "24h" or "2d") from
 * min_ms to max_ms, into milliseconds. `like` is an example for the message.
 */
static int parse_duration(const char *name, const char *v, const char *like, int64_t min_ms, int64_t max_ms,
			  int64_t *out_ms)
{
	int64_t us = 0;
	*out_ms = 0; /* defined on every return: the callers' -O3 flow analysis cannot see that errors are < 0 */
	if (gw_duration_parse(v, &us) < 0 || us % 1000 || us / 1000 < min_ms || us / 1000 > max_ms)
		return gw_error_set(GW_EINVALID,
				    "store URL s3://: %s='%s' is not a period like %s (ms, s, m, h or d) from %lldms to %llds",
				    name, v, like, (long long)min_ms, (long long)(max_ms / 1000));
	*out_ms = us / 1000;
	return 0;
}

/* "30d", "12h" or "30s": how long each object stays locked (S3 dates are whole seconds). */
static int parse_retain(const char *v, int64_t *out)
{
	int64_t ms;
	int rc = parse_duration("retain", v, "30d", 1000, GW_DURATION_MAX_US / 1000, &ms);
	if (rc == 0 && ms % 1000)
		rc = gw_error_set(GW_EINVALID, "store URL s3://: retain='%s' is not whole seconds", v);
	if (rc == 0)
		*out = ms / 1000;
	return rc;
}

/* "24h", "90m", "2d" or "30s": how old an incomplete multipart upload must be to be a dead writer's. */
static int parse_upload_max_age(const char *v, int64_t *out)
{
	int64_t ms;
	int rc = parse_duration("upload_max_age", v, "24h", 1000, 3650LL * 86400 * 1000, &ms);
	if (rc == 0)
		*out = ms / 1000;
	return rc;
}

static int parse_param(s3_config *cfg, char *name, char *value)
{
	char *end;
	long n;

	if (percent_decode(value) < 0)
		return gw_error_set(GW_EINVALID, "store URL s3://: parameter %s has a bad %%-escape", name);
	if (!strcmp(name, "endpoint")) {
		size_t len = strlen(value);
		if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
			return gw_error_set(GW_EINVALID,
					    "store URL s3://: endpoint='%s' must start with http:// or https://", value);
		if (strchr(value, '@'))
			return gw_error_set(GW_EINVALID,
					    "store URL s3://: the endpoint must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
		while (len && value[len - 1] == '/')
			len--;
		return set_str(&cfg->endpoint, value, len);
	}
	if (!strcmp(name, "region")) {
		if (!*value)
			return gw_error_set(GW_EINVALID, "store URL s3://: region is empty");
		return set_str(&cfg->region, value, strlen(value));
	}
	if (!strcmp(name, "path_style"))
		return parse_bool(name, value, &cfg->path_style);
	if (!strcmp(name, "lock")) {
		if (!strcmp(value, "compliance"))
			cfg->lock_mode = S3_LOCK_COMPLIANCE;
		else if (!strcmp(value, "governance"))
			cfg->lock_mode = S3_LOCK_GOVERNANCE;
		else
			return gw_error_set(GW_EINVALID, "store URL s3://: lock='%s' is not compliance or governance",
					    value);
		return 0;
	}
	if (!strcmp(name, "retain"))
		return parse_retain(value, &cfg->retain_seconds);
	if (!strcmp(name, "ca_file")) {
		if (access(value, R_OK) < 0)
			return gw_error_set_errno(GW_EINVALID, "store URL s3://: ca_file %s cannot be read", value);
		return set_str(&cfg->ca_file, value, strlen(value));
	}
	if (!strcmp(name, "retries")) {
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno || end == value || *end || n < 0 || n > S3_MAX_RETRIES)
			return gw_error_set(GW_EINVALID, "store URL s3://: retries='%s' is not a number from 0 to %d",
					    value, S3_MAX_RETRIES);
		cfg->retries = (int)n;
		return 0;
	}
	if (!strcmp(name, "upload_max_age"))
		return parse_upload_max_age(value, &cfg->upload_max_age);
	if (!strcmp(name, "connect_timeout"))
		return parse_duration(name, value, "5s", 100, 600000, &cfg->connect_timeout_ms);
	if (!strcmp(name, "first_byte_timeout"))
		return parse_duration(name, value, "10s", 100, 3600000, &cfg->first_byte_timeout_ms);
	if (!strcmp(name, "stall_timeout"))
		return parse_duration(name, value, "5s", 100, 600000, &cfg->stall_timeout_ms);
	if (!strcmp(name, "deadline"))
		return parse_duration(name, value, "60s", 100, 86400000, &cfg->deadline_ms);
	if (!strcmp(name, "parallel")) {
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno || end == value || *end || n < 1 || n > S3_MAX_PARALLEL)
			return gw_error_set(GW_EINVALID, "store URL s3://: parallel='%s' is not a number from 1 to %d",
					    value, S3_MAX_PARALLEL);
		cfg->parallel = (int)n;
		return 0;
	}
	/* The value is not repeated: an unknown parameter might be a misplaced secret. */
	return gw_error_set(GW_EINVALID,
			    "store URL s3://: unknown parameter '%s' (known: endpoint, region, path_style, lock, retain, ca_file, retries, upload_max_age, connect_timeout, "
			    "first_byte_timeout, stall_timeout, deadline, parallel)",
			    name);
}

static int parse_query(s3_config *cfg, const char *query)
{
	char *copy = strdup(query), *save = NULL, *item;
	int rc = 0;
	if (!copy)
		return oom();
	for (item = strtok_r(copy, "&", &save); item && rc == 0; item = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(item, '=');
		if (!eq) {
			rc = gw_error_set(GW_EINVALID, "store URL s3://: parameter '%s' has no value (name=value)", item);
			break;
		}
		*eq = '\0';
		rc = parse_param(cfg, item, eq + 1);
	}
	free(copy);
	return rc;
}

static int apply_defaults(s3_config *cfg)
{
	const char *env;
	char buf[256];

	if (!cfg->region) {
		if (!(env = getenv("AWS_REGION")) || !*env)
			env = getenv("AWS_DEFAULT_REGION");
		if (!env || !*env)
			env = "us-east-1";
		if (set_str(&cfg->region, env, strlen(env)) < 0)
			return GW_ERROR;
	}
	if (!cfg->endpoint && (env = getenv("AWS_ENDPOINT_URL_S3")) && *env) {
		char *v = strdup(env);
		int rc;
		if (!v)
			return oom();
		rc = parse_param(cfg, (char *)"endpoint", v);
		free(v);
		if (rc < 0)
			return gw_error_prefix("AWS_ENDPOINT_URL_S3");
	}
	if (!cfg->endpoint) {
		snprintf(buf, sizeof(buf), "https://s3.%s.amazonaws.com", cfg->region);
		if (set_str(&cfg->endpoint, buf, strlen(buf)) < 0)
			return GW_ERROR;
	}
	if (cfg->lock_mode && !cfg->retain_seconds)
		return gw_error_set(GW_EINVALID, "store URL s3://%s: lock= needs retain= (a period like 30d)", cfg->bucket);
	if (!cfg->lock_mode && cfg->retain_seconds)
		return gw_error_set(GW_EINVALID, "store URL s3://%s: retain= needs lock=compliance or lock=governance",
				    cfg->bucket);
	if (!cfg->path_style && strchr(cfg->bucket, '.') && !strncmp(cfg->endpoint, "https://", 8))
		return gw_error_set(GW_EINVALID,
				    "store URL s3://%s: a bucket name with '.' does not match the TLS certificate in virtual-host style; add path_style=true",
				    cfg->bucket);
	return 0;
}

int s3_config_parse(s3_config *cfg, const char *rest)
{
	const char *q = strchr(rest, '?'), *end = q ? q : rest + strlen(rest);
	const char *slash = memchr(rest, '/', (size_t)(end - rest));
	const char *bucket_end = slash ? slash : end;
	const char *at = memchr(rest, '@', (size_t)(end - rest));
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->retries = S3_DEFAULT_RETRIES;
	cfg->upload_max_age = S3_DEFAULT_UPLOAD_MAX_AGE;
	cfg->connect_timeout_ms = S3_DEFAULT_CONNECT_TIMEOUT_MS;
	cfg->first_byte_timeout_ms = S3_DEFAULT_FIRST_BYTE_TIMEOUT_MS;
	cfg->stall_timeout_ms = S3_DEFAULT_STALL_TIMEOUT_MS;
	cfg->deadline_ms = S3_DEFAULT_DEADLINE_MS;
	cfg->parallel = S3_DEFAULT_PARALLEL;
	if (at)
		return gw_error_set(GW_EINVALID,
				    "store URL s3://: credentials are never taken from the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use a credentials file");
	if (!bucket_name_ok(rest, (size_t)(bucket_end - rest)))
		return gw_error_set(GW_EINVALID,
				    "store URL s3://%.*s: '%.*s' is not a valid bucket name (3-63 of a-z 0-9 . -)",
				    (int)(end - rest), rest, (int)(bucket_end - rest), rest);
	if ((rc = set_str(&cfg->bucket, rest, (size_t)(bucket_end - rest))) < 0)
		goto fail;
	if (slash) {
		const char *p = slash + 1, *e = end;
		while (p < e && *p == '/')
			p++;
		while (e > p && e[-1] == '/')
			e--;
		if ((rc = set_str(&cfg->prefix, p, (size_t)(e - p))) < 0)
			goto fail;
	} else if ((rc = set_str(&cfg->prefix, "", 0)) < 0) {
		goto fail;
	}
	if (cfg->prefix[0] && (rc = gw_store_key_check(cfg->prefix)) < 0) {
		gw_error_prefix("store URL s3://%s: the prefix", cfg->bucket);
		goto fail;
	}
	if (q && (rc = parse_query(cfg, q + 1)) < 0)
		goto fail;
	if ((rc = apply_defaults(cfg)) < 0)
		goto fail;
	return 0;
fail:
	s3_config_dispose(cfg);
	return rc;
}

void s3_config_dispose(s3_config *cfg)
{
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->endpoint);
	free(cfg->region);
	free(cfg->ca_file);
	memset(cfg, 0, sizeof(*cfg));
}

char *s3_config_url(const s3_config *cfg)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "s3://%s%s%s?endpoint=%s&region=%s&path_style=%s", cfg->bucket,
			 cfg->prefix[0] ? "/" : "", cfg->prefix, cfg->endpoint, cfg->region,
			 cfg->path_style ? "true" : "false");
	if (cfg->lock_mode && n > 0 && (size_t)n < sizeof(buf)) {
		char retain[32];
		gw_duration_format(cfg->retain_seconds * 1000000, retain, sizeof(retain));
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "&lock=%s&retain=%s",
			      cfg->lock_mode == S3_LOCK_COMPLIANCE ? "compliance" : "governance", retain);
	}
	if (cfg->ca_file && n > 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "&ca_file=%s", cfg->ca_file);
	if (cfg->retries != S3_DEFAULT_RETRIES && n > 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "&retries=%d", cfg->retries);
	if (cfg->parallel != S3_DEFAULT_PARALLEL && n > 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "&parallel=%d", cfg->parallel);
	if (cfg->upload_max_age != S3_DEFAULT_UPLOAD_MAX_AGE && n > 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "&upload_max_age=%llds", (long long)cfg->upload_max_age);
	{
		const struct {
			const char *name;
			int64_t value, def;
		} limits[] = {
			{"connect_timeout", cfg->connect_timeout_ms, S3_DEFAULT_CONNECT_TIMEOUT_MS},
			{"first_byte_timeout", cfg->first_byte_timeout_ms, S3_DEFAULT_FIRST_BYTE_TIMEOUT_MS},
			{"stall_timeout", cfg->stall_timeout_ms, S3_DEFAULT_STALL_TIMEOUT_MS},
			{"deadline", cfg->deadline_ms, S3_DEFAULT_DEADLINE_MS},
		};
		size_t i;
		for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
			if (limits[i].value != limits[i].def && n > 0 && (size_t)n < sizeof(buf))
				n += snprintf(buf + n, sizeof(buf) - (size_t)n, "&%s=%lldms", limits[i].name,
					      (long long)limits[i].value);
	}
	return strdup(buf);
}

/* Credentials. */

static void secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void s3_credentials_dispose(s3_credentials *cred)
{
	secret_free(cred->access_key);
	secret_free(cred->secret_key);
	secret_free(cred->session_token);
	secret_free(cred->userpwd);
	memset(cred, 0, sizeof(*cred));
}

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* An INI file: [profile] sections of "name = value" lines. */
static int read_credentials_file(s3_credentials *cred, const char *path, const char *profile)
{
	char line[4096];
	int in_profile = 0, found = 0, rc = 0;
	struct stat st;
	FILE *f;

	if (!(f = fopen(path, "r")))
		return gw_error_set_errno(GW_EAUTH, "cannot read the S3 credentials file %s", path);
	/* Check the open file, not the name: nothing can swap it in between. */
	if (fstat(fileno(f), &st) < 0) {
		fclose(f);
		return gw_error_set_errno(GW_EAUTH, "cannot stat the S3 credentials file %s", path);
	}
	if (st.st_mode & 077) {
		fclose(f);
		return gw_error_set(GW_EAUTH,
				    "the S3 credentials file %s has mode %04o: it holds a secret, so only its owner may read it (chmod 600 %s)",
				    path, (unsigned)(st.st_mode & 07777), path);
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq, *name, *value, **dst = NULL;
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (close)
				*close = '\0';
			s = trim(s + 1);
			in_profile = !strcmp(s, profile);
			found |= in_profile;
			continue;
		}
		if (!in_profile || !(eq = strchr(s, '=')))
			continue;
		*eq = '\0';
		name = trim(s);
		value = trim(eq + 1);
		if (!strcmp(name, "aws_access_key_id"))
			dst = &cred->access_key;
		else if (!strcmp(name, "aws_secret_access_key"))
			dst = &cred->secret_key;
		else if (!strcmp(name, "aws_session_token"))
			dst = &cred->session_token;
		if (dst) {
			secret_free(*dst);
			if (!(*dst = strdup(value)))
				rc = oom();
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (rc < 0)
		return rc;
	if (!found)
		return gw_error_set(GW_EAUTH, "the S3 credentials file %s has no [%s] profile", path, profile);
	if (!cred->access_key || !cred->secret_key)
		return gw_error_set(GW_EAUTH,
				    "the S3 credentials file %s: profile [%s] lacks aws_access_key_id or aws_secret_access_key",
				    path, profile);
	return 0;
}

int s3_credentials_load(s3_credentials *cred)
{
	const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");
	int rc = 0;
	size_t n;

	memset(cred, 0, sizeof(*cred));
	if (key && *key && secret && *secret) {
		if (!(cred->access_key = strdup(key)) || !(cred->secret_key = strdup(secret)) ||
		    (token && *token && !(cred->session_token = strdup(token))))
			rc = oom();
	} else {
		const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE"), *profile = getenv("AWS_PROFILE");
		const char *home = getenv("HOME");
		char path[4096];
		if (file && *file)
			snprintf(path, sizeof(path), "%s", file);
		else if (home && *home)
			snprintf(path, sizeof(path), "%s/.aws/credentials", home);
		else
			path[0] = '\0';
		if (!path[0] || access(path, F_OK) < 0)
			return gw_error_set(GW_EAUTH,
					    "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to %s (mode 0600)",
					    path[0] ? path : "~/.aws/credentials");
		rc = read_credentials_file(cred, path, profile && *profile ? profile : "default");
	}
	if (rc == 0 && strchr(cred->access_key, ':'))
		rc = gw_error_set(GW_EAUTH, "the S3 access key id contains ':', which no valid key does");
	if (rc == 0) {
		n = strlen(cred->access_key) + strlen(cred->secret_key) + 2;
		if (!(cred->userpwd = malloc(n)))
			rc = oom();
		else
			snprintf(cred->userpwd, n, "%s:%s", cred->access_key, cred->secret_key);
	}
	if (rc < 0)
		s3_credentials_dispose(cred);
	return rc;
}
