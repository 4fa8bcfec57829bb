/*
 * The public storage API: URL dispatch to a driver, key validation, and the
 * small helpers (put, get) every caller would otherwise write again.
 */
#include "store/driver.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gw_store_driver *const drivers[] = {
	&gw_store_driver_file,
#ifdef GITWAL_HAVE_S3
	&gw_store_driver_s3,
#endif
};

static int key_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '%' || c == '+' || c == '=';
}

int gw_store_key_check(const char *key)
{
	const char *p = key, *component = key;
	if (!key || !*key)
		return gw_error_set(GW_EINVALID, "empty store key");
	if (strlen(key) > 1024)
		return gw_error_set(GW_EINVALID, "store key too long (%zu bytes)", strlen(key));
	for (;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - component);
			/* A leading '.' is reserved for drivers' temporary names. */
			if (n == 0 || component[0] == '.')
				return gw_error_set(GW_EINVALID,
						    "invalid store key '%s': empty component or one starting with '.'", key);
			if (*p == '\0')
				return 0;
			component = p + 1;
		} else if (!key_char_ok(*p)) {
			return gw_error_set(GW_EINVALID, "invalid store key '%s': character 0x%02x not allowed", key,
					    (unsigned char)*p);
		}
	}
}

int gw_store_open(gw_store **out, const char *url)
{
	return gw_store_open_flags(out, url, 0);
}

int gw_store_open_flags(gw_store **out, const char *url, unsigned flags)
{
	const char *sep;
	gw_store *store;
	size_t i;
	int rc;

	*out = NULL;
	if (!url || !(sep = strstr(url, "://")))
		return gw_error_set(GW_EINVALID, "store URL '%s' has no scheme (expected file:///path or s3://bucket/prefix)",
				    url ? url : "");
	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		size_t n = strlen(drivers[i]->scheme);
		if ((size_t)(sep - url) != n || strncmp(url, drivers[i]->scheme, n) != 0)
			continue;
		if (!(store = calloc(1, sizeof(*store))))
			return gw_error_set(GW_ERROR, "out of memory");
		store->driver = drivers[i];
		store->features = drivers[i]->features;
		store->open_flags = flags;
		if ((rc = drivers[i]->open(store, sep + 3)) < 0) {
			free(store->url);
			free(store);
			return rc;
		}
		if (!store->url)
			store->url = strdup(url);
		*out = store;
		return 0;
	}
	return gw_error_set(GW_EINVALID, "store URL '%.*s://...': unknown scheme (supported: file, s3)", (int)(sep - url),
			    url);
}

void gw_store_free(gw_store *store)
{
	if (!store)
		return;
	store->driver->free(store);
	free(store->url);
	free(store);
}

const char *gw_store_url(const gw_store *store)
{
	return store->url;
}

uint32_t gw_store_features(const gw_store *store)
{
	return store->features;
}

void gw_store_health_get(gw_store *store, gw_store_health *out)
{
	memset(out, 0, sizeof(*out));
	out->healthy = 1;
	if (store->driver->health)
		store->driver->health(store, out);
}

void gw_store_traffic(const gw_store *store, uint64_t *read, uint64_t *written)
{
	*read = __atomic_load_n(&store->bytes_read, __ATOMIC_RELAXED);
	*written = __atomic_load_n(&store->bytes_written, __ATOMIC_RELAXED);
}

static int writer_write(gw_store_writer *w, const void *buf, size_t len)
{
	int rc = w->store->driver->write(w, buf, len);
	if (rc == 0)
		__atomic_add_fetch(&w->store->bytes_written, (uint64_t)len, __ATOMIC_RELAXED);
	return rc;
}

static int writer_sink_write(gw_sink *sink, const void *buf, size_t len)
{
	return writer_write((gw_store_writer *)sink, buf, len);
}

int gw_store_write_open(gw_store_writer **out, gw_store *store, const char *key, uint64_t size_hint)
{
	int rc;
	*out = NULL;
	if ((rc = gw_store_key_check(key)) < 0)
		return rc;
	if ((rc = store->driver->write_open(out, store, key, size_hint)) < 0)
		return rc;
	(*out)->sink.write = writer_sink_write;
	(*out)->store = store;
	(*out)->committed = 0;
	if (!(*out)->key && !((*out)->key = strdup(key))) {
		store->driver->writer_free(*out);
		*out = NULL;
		return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

gw_sink *gw_store_writer_sink(gw_store_writer *w)
{
	return &w->sink;
}

int gw_store_writer_write(gw_store_writer *w, const void *buf, size_t len)
{
	return len ? writer_write(w, buf, len) : 0;
}

int gw_store_writer_commit(gw_store_writer *w)
{
	int rc = w->store->driver->commit(w);
	if (rc == 0)
		w->committed = 1;
	return rc;
}

void gw_store_writer_free(gw_store_writer *w)
{
	if (w)
		w->store->driver->writer_free(w);
}

int gw_store_put(gw_store *store, const char *key, const void *buf, size_t len)
{
	gw_store_writer *w;
	int rc;
	if ((rc = gw_store_write_open(&w, store, key, len)) < 0)
		return rc;
	if ((rc = gw_store_writer_write(w, buf, len)) == 0)
		rc = gw_store_writer_commit(w);
	gw_store_writer_free(w);
	return rc;
}

int gw_store_read_open(gw_store_reader **out, gw_store *store, const char *key, uint64_t offset, uint64_t length)
{
	int rc;
	*out = NULL;
	if ((rc = gw_store_key_check(key)) < 0)
		return rc;
	return store->driver->read_open(out, store, key, offset, length);
}

ssize_t gw_store_reader_read(gw_store_reader *r, void *buf, size_t len)
{
	ssize_t n = r->store->driver->read(r, buf, len);
	if (n > 0)
		__atomic_add_fetch(&r->store->bytes_read, (uint64_t)n, __ATOMIC_RELAXED);
	return n;
}

void gw_store_reader_free(gw_store_reader *r)
{
	if (r)
		r->store->driver->reader_free(r);
}

/* Read buffer of the pump: large enough that a request's overhead does not count, small next to a pack. */
#define PUMP_BUFFER (1u << 20)

/* The one loop that reads a key: an open reader's bytes into a sink. */
static int pump(gw_store_reader *r, uint64_t left, gw_sink *into)
{
	unsigned char *buf;
	/* No more buffer than the key needs: the spool and the object set read many small keys. */
	size_t size = left < PUMP_BUFFER ? (size_t)left + 1 : PUMP_BUFFER;
	int rc;
	if (!(buf = malloc(size)))
		return gw_error_set(GW_ERROR, "out of memory");
	for (;;) {
		ssize_t n = gw_store_reader_read(r, buf, size);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		if ((rc = gw_sink_write(into, buf, (size_t)n)) < 0)
			break;
	}
	free(buf);
	return rc;
}

int gw_store_pump(gw_store *store, const char *key, uint64_t offset, uint64_t length, gw_sink *into)
{
	gw_store_reader *r;
	uint64_t left;
	int rc;
	if ((rc = gw_store_read_open(&r, store, key, offset, length)) < 0)
		return rc;
	left = r->size > offset ? r->size - offset : 0;
	rc = pump(r, length < left ? length : left, into);
	gw_store_reader_free(r);
	return rc;
}

int gw_store_read_range(gw_store *store, const char *key, uint64_t offset, size_t len, void *buf)
{
	gw_buffer_sink b;
	char what[64];
	int rc;
	snprintf(what, sizeof(what), "a read of %zu bytes", len);
	gw_buffer_sink_init(&b, buf, len, 0, what);
	if ((rc = gw_store_pump(store, key, offset, len, &b.sink)) == 0 && b.len < len)
		rc = gw_error_set(GW_ECORRUPT, "key %s in store %s is truncated: %zu of the %zu bytes at %llu", key,
				  store->url, b.len, len, (unsigned long long)offset);
	return rc;
}

int gw_store_get(gw_store *store, const char *key, size_t max_size, char **out, size_t *out_len)
{
	gw_store_reader *r;
	gw_buffer_sink b;
	char *what = NULL;
	int rc;

	*out = NULL;
	*out_len = 0;
	if ((rc = gw_store_read_open(&r, store, key, 0, GW_STORE_TO_END)) < 0)
		return rc;
	/* Refused from its size before a byte is read: an oversized key never reaches memory. */
	if (r->size > max_size) {
		rc = gw_error_set(GW_ECORRUPT, "key %s in store %s has %llu bytes, more than the %zu allowed", key,
				  store->url, (unsigned long long)r->size, max_size);
		gw_store_reader_free(r);
		return rc;
	}
	if (asprintf(&what, "key %s in store %s", key, store->url) < 0) {
		gw_store_reader_free(r);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	/* It may still grow while read (a driver's size is what it was at open): the sink keeps to the cap. */
	gw_buffer_sink_init(&b, NULL, max_size, (size_t)r->size, what);
	if ((rc = pump(r, r->size, &b.sink)) == 0 && !(*out = (char *)gw_buffer_sink_take(&b, out_len)))
		rc = GW_ERROR;
	gw_buffer_sink_dispose(&b);
	gw_store_reader_free(r);
	free(what);
	return rc;
}

int gw_store_stat_key(gw_store *store, const char *key, gw_store_stat *st)
{
	int rc;
	memset(st, 0, sizeof(*st));
	if ((rc = gw_store_key_check(key)) < 0)
		return rc;
	return store->driver->stat(store, key, st);
}

/* A listing prefix: whole components must be valid key components; the last may be partial. */
static int prefix_check(const char *prefix)
{
	const char *p, *comp = prefix;
	if (strlen(prefix) > 1024)
		return gw_error_set(GW_EINVALID, "store prefix too long");
	for (p = prefix;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - comp);
			if ((*p == '/' && n == 0) || (n > 0 && comp[0] == '.'))
				return gw_error_set(GW_EINVALID,
						    "invalid store prefix '%s': empty component or one starting with '.'", prefix);
			if (*p == '\0')
				return 0;
			comp = p + 1;
		} else if (!key_char_ok(*p)) {
			return gw_error_set(GW_EINVALID, "invalid store prefix '%s': character 0x%02x not allowed", prefix,
					    (unsigned char)*p);
		}
	}
}

int gw_store_list_after(gw_store *store, const char *prefix, const char *start_after, gw_store_list_cb cb,
			void *payload)
{
	int rc;
	if (!prefix)
		prefix = "";
	if ((rc = prefix_check(prefix)) < 0)
		return rc;
	return store->driver->list(store, prefix, start_after && *start_after ? start_after : NULL, cb, payload);
}

int gw_store_list(gw_store *store, const char *prefix, gw_store_list_cb cb, void *payload)
{
	return gw_store_list_after(store, prefix, NULL, cb, payload);
}

int gw_store_listing_add(const gw_store_entry *e, void *listing)
{
	gw_store_listing *l = listing;
	/* Two arrays of one length: each grows the same way from the same capacity. */
	size_t kcap = l->cap, scap = l->cap;
	if (GW_ARRAY_RESERVE(l->keys, kcap, l->count + 1) < 0 || GW_ARRAY_RESERVE(l->sizes, scap, l->count + 1) < 0)
		return GW_ERROR;
	l->cap = scap;
	if (!(l->keys[l->count] = strdup(e->key)))
		return gw_error_set(GW_ERROR, "out of memory");
	l->sizes[l->count++] = e->size;
	return 0;
}

int gw_store_list_all(gw_store *store, const char *prefix, gw_store_listing *out)
{
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = gw_store_list(store, prefix, gw_store_listing_add, out)) < 0)
		gw_store_listing_dispose(out);
	return rc;
}

void gw_store_listing_dispose(gw_store_listing *l)
{
	size_t i;
	for (i = 0; i < l->count; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

int gw_store_strays(gw_store *store, const char *prefix, gw_store_stray_cb cb, void *payload)
{
	int rc;
	if (!prefix)
		prefix = "";
	if ((rc = prefix_check(prefix)) < 0)
		return rc;
	return store->driver->strays ? store->driver->strays(store, prefix, cb, payload) : 0;
}

int gw_store_remove(gw_store *store, const char *key)
{
	int rc;
	if ((rc = gw_store_key_check(key)) < 0)
		return rc;
	return store->driver->remove(store, key);
}

/* Key by key: a stat first where a lock could hold the object, so a locked one is reported, not attempted. */
static int remove_each(gw_store *store, const char *const *keys, size_t n, int64_t now_s, gw_store_removal_cb cb,
		       void *payload)
{
	size_t i;
	for (i = 0; i < n; i++) {
		gw_store_removal r = {keys[i], 0, NULL, 0, 0};
		gw_store_stat st;
		int rc = 0, stop;
		if (store->features & (GW_STORE_FEATURE_LOCK | GW_STORE_FEATURE_VERSIONS)) {
			rc = gw_store_stat_key(store, keys[i], &st);
			if (rc == 0 && st.retain_until > now_s) {
				r.rc = GW_ELOCKED;
				r.retain_until = st.retain_until;
				r.created = st.mtime;
				r.message = "under Object Lock retention";
			}
		}
		if (rc == 0 && r.rc == 0)
			rc = store->driver->remove(store, keys[i]);
		if (rc == GW_ENOTFOUND) {
			rc = 0;
			gw_error_clear();
		}
		if (rc == GW_EIO)
			return rc; /* the store, not the key: stop here */
		if (rc < 0) {
			r.rc = rc;
			r.message = gw_error_message();
		}
		if ((stop = cb(&r, payload)) != 0)
			return stop;
	}
	return 0;
}

int gw_store_remove_batch(gw_store *store, const char *const *keys, size_t n, int64_t now_s, gw_store_removal_cb cb,
			  void *payload)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (gw_store_key_check(keys[i]) < 0)
			return GW_EINVALID;
	if (store->driver->remove_batch)
		return store->driver->remove_batch(store, keys, n, now_s, cb, payload);
	return remove_each(store, keys, n, now_s, cb, payload);
}

int gw_store_lock_period(gw_store *store, int64_t *seconds)
{
	*seconds = 0;
	return store->driver->lock_period ? store->driver->lock_period(store, seconds) : 0;
}
