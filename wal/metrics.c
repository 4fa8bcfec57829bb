/*
 * The archiver's metrics (see include/gitwal/metrics.h): a registry of
 * metric families, each a name, HELP text, type and up to
 * GW_METRICS_MAX_SERIES label sets; the Prometheus text renderer; and the
 * loopback /metrics endpoint on libmicrohttpd.
 *
 * Locking: the registry mutex guards the family list and scrape-time
 * callbacks, i.e. registration and rendering. Values are C11 atomics so
 * worker threads never wait for a scrape. Doubles are kept as their bit
 * patterns in 64-bit atomics and updated by compare-and-swap.
 */
#include "gitwal/metrics.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* ---------------------------------------------------------------- registry */

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

static const char *const type_names[] = { "counter", "gauge", "histogram" };

struct family {
	char *name;
	char *help;
	metric_type type;
	size_t nlabels;
	char *label_names[GW_METRICS_MAX_LABELS];
	size_t nseries;
	void *series[GW_METRICS_MAX_SERIES]; /* gw_metrics_counter/gauge/histogram */
};

/* What every series starts with; the typed structs embed it first. */
struct series_head {
	struct family *family;
	char *label_values[GW_METRICS_MAX_LABELS];
};

struct gw_metrics_counter {
	struct series_head head;
	_Atomic uint64_t value;
};

struct gw_metrics_gauge {
	struct series_head head;
	gw_metrics *reg; /* for the lock that guards fn/payload */
	int is_double;
	_Atomic uint64_t bits; /* int64_t, or a double's bit pattern */
	gw_metrics_gauge_fn fn;
	void *payload;
};

struct gw_metrics_histogram {
	struct series_head head;
	size_t nbounds;
	double bounds[GW_METRICS_MAX_BUCKETS];
	/* Per-bucket (not cumulative) counts; the last is the +Inf bucket. */
	_Atomic uint64_t buckets[GW_METRICS_MAX_BUCKETS + 1];
	_Atomic uint64_t sum_bits;
};

struct gw_metrics {
	pthread_mutex_t lock;
	struct family **families;
	size_t nfamilies, cap;
	/*
	 * Numbers must be rendered with a '.' whatever the process locale is
	 * (a setlocale(LC_ALL, "") elsewhere would otherwise give "0,5").
	 */
	locale_t c_locale;
};

static uint64_t dbl_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

static void atomic_add_double(_Atomic uint64_t *slot, double delta)
{
	uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(slot, &old, dbl_bits(bits_dbl(old) + delta),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

int gw_metrics_new(gw_metrics **out)
{
	gw_metrics *reg;
	*out = NULL;
	if (!(reg = calloc(1, sizeof(*reg))))
		return gw_error_set(GW_ERROR, "metrics registry: out of memory");
	reg->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (reg->c_locale == (locale_t)0) {
		free(reg);
		return gw_error_set_errno(GW_ERROR, "metrics registry: cannot create the C locale");
	}
	pthread_mutex_init(&reg->lock, NULL);
	*out = reg;
	return 0;
}

static void series_free(struct family *f, void *s)
{
	struct series_head *h = s;
	size_t i;
	for (i = 0; i < f->nlabels; i++)
		free(h->label_values[i]);
	free(s);
}

static void family_free(struct family *f)
{
	size_t i;
	for (i = 0; i < f->nseries; i++)
		series_free(f, f->series[i]);
	for (i = 0; i < f->nlabels; i++)
		free(f->label_names[i]);
	free(f->name);
	free(f->help);
	free(f);
}

void gw_metrics_free(gw_metrics *reg)
{
	size_t i;
	if (!reg)
		return;
	for (i = 0; i < reg->nfamilies; i++)
		family_free(reg->families[i]);
	free(reg->families);
	freelocale(reg->c_locale);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* ASCII only, whatever the locale says a letter is: Prometheus's own rule. */
static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static int valid_metric_name(const char *s)
{
	if (!s || !(is_alpha(*s) || *s == '_' || *s == ':'))
		return 0;
	for (s++; *s; s++)
		if (!(is_alnum(*s) || *s == '_' || *s == ':'))
			return 0;
	return 1;
}

static int valid_label_name(const char *s)
{
	if (!s || !(is_alpha(*s) || *s == '_'))
		return 0;
	if (s[0] == '_' && s[1] == '_') /* reserved for Prometheus itself */
		return 0;
	for (s++; *s; s++)
		if (!(is_alnum(*s) || *s == '_'))
			return 0;
	return 1;
}

static int check_labels(const char *name, metric_type type, const gw_metrics_label *labels, size_t nlabels)
{
	size_t i, j;
	if (nlabels > GW_METRICS_MAX_LABELS)
		return gw_error_set(GW_EINVALID, "metric '%s': %zu labels, at most %d allowed", name, nlabels,
				    GW_METRICS_MAX_LABELS);
	if (nlabels && !labels)
		return gw_error_set(GW_EINVALID, "metric '%s': %zu labels but no label array", name, nlabels);
	for (i = 0; i < nlabels; i++) {
		if (!valid_label_name(labels[i].name))
			return gw_error_set(GW_EINVALID, "metric '%s': invalid label name '%s'", name,
					    labels[i].name ? labels[i].name : "(null)");
		if (!labels[i].value)
			return gw_error_set(GW_EINVALID, "metric '%s': label '%s' has no value", name,
					    labels[i].name);
		if (type == METRIC_HISTOGRAM && !strcmp(labels[i].name, "le"))
			return gw_error_set(GW_EINVALID,
					    "metric '%s': label 'le' is reserved for histogram buckets", name);
		for (j = 0; j < i; j++)
			if (!strcmp(labels[i].name, labels[j].name))
				return gw_error_set(GW_EINVALID, "metric '%s': label '%s' given twice", name,
						    labels[i].name);
	}
	return 0;
}

static struct family *family_find(gw_metrics *reg, const char *name)
{
	size_t i;
	for (i = 0; i < reg->nfamilies; i++)
		if (!strcmp(reg->families[i]->name, name))
			return reg->families[i];
	return NULL;
}

static struct family *family_new(const char *name, const char *help, metric_type type,
				 const gw_metrics_label *labels, size_t nlabels)
{
	struct family *f = calloc(1, sizeof(*f));
	size_t i;
	if (!f)
		return NULL;
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help);
	for (i = 0; i < nlabels; i++) {
		if (!(f->label_names[i] = strdup(labels[i].name)))
			break;
		f->nlabels++;
	}
	if (!f->name || !f->help || f->nlabels != nlabels) {
		family_free(f);
		return NULL;
	}
	return f;
}

/* Does an existing family accept a series with these labels? */
static int family_check(const struct family *f, const char *help, metric_type type,
			const gw_metrics_label *labels, size_t nlabels)
{
	size_t i, j;
	if (f->type != type)
		return gw_error_set(GW_EINVALID, "metric '%s' is already registered as a %s, not a %s", f->name,
				    type_names[f->type], type_names[type]);
	if (strcmp(f->help, help))
		return gw_error_set(GW_EINVALID, "metric '%s' is already registered with other HELP text",
				    f->name);
	if (f->nlabels != nlabels)
		return gw_error_set(GW_EINVALID, "metric '%s' is already registered with %zu labels, not %zu",
				    f->name, f->nlabels, nlabels);
	for (i = 0; i < nlabels; i++)
		if (strcmp(f->label_names[i], labels[i].name))
			return gw_error_set(GW_EINVALID,
					    "metric '%s' is already registered with label '%s' where '%s' is given",
					    f->name, f->label_names[i], labels[i].name);
	for (j = 0; j < f->nseries; j++) {
		const struct series_head *h = f->series[j];
		for (i = 0; i < nlabels; i++)
			if (strcmp(h->label_values[i], labels[i].value))
				break;
		if (i == nlabels)
			return gw_error_set(GW_EEXISTS, "metric '%s' is already registered with these label values",
					    f->name);
	}
	if (f->nseries >= GW_METRICS_MAX_SERIES)
		return gw_error_set(GW_EINVALID,
				    "metric '%s': more than %d label sets; labels must come from a small fixed set "
				    "(no per-repository series)",
				    f->name, GW_METRICS_MAX_SERIES);
	return 0;
}

/* Validate, then add the caller-allocated series s to its family (made if new). */
static int series_register(gw_metrics *reg, metric_type type, const char *name, const char *help,
			   const gw_metrics_label *labels, size_t nlabels, void *s)
{
	struct series_head *head = s;
	struct family *f, *made = NULL;
	size_t i;
	int rc;

	if (!reg)
		return gw_error_set(GW_EINVALID, "metric '%s': no registry", name ? name : "(null)");
	if (!valid_metric_name(name))
		return gw_error_set(GW_EINVALID, "invalid metric name '%s' (expected [a-zA-Z_:][a-zA-Z0-9_:]*)",
				    name ? name : "(null)");
	if (!help || !*help)
		return gw_error_set(GW_EINVALID, "metric '%s': HELP text is required", name);
	if ((rc = check_labels(name, type, labels, nlabels)) < 0)
		return rc;

	/* Copy label values before taking the lock: allocation may fail. */
	for (i = 0; i < nlabels; i++)
		if (!(head->label_values[i] = strdup(labels[i].value)))
			goto oom;

	pthread_mutex_lock(&reg->lock);
	if ((f = family_find(reg, name))) {
		if ((rc = family_check(f, help, type, labels, nlabels)) < 0) {
			pthread_mutex_unlock(&reg->lock);
			goto fail;
		}
	} else {
		if (GW_ARRAY_RESERVE(reg->families, reg->cap, reg->nfamilies + 1) < 0 ||
		    !(f = made = family_new(name, help, type, labels, nlabels))) {
			pthread_mutex_unlock(&reg->lock);
			goto oom;
		}
		reg->families[reg->nfamilies++] = made;
	}
	head->family = f;
	f->series[f->nseries++] = s;
	pthread_mutex_unlock(&reg->lock);
	return 0;

oom:
	rc = gw_error_set(GW_ERROR, "metric '%s': out of memory", name);
fail:
	for (i = 0; i < nlabels; i++)
		free(head->label_values[i]);
	return rc;
}

int gw_metrics_counter_register(gw_metrics *reg, const char *name, const char *help,
				const gw_metrics_label *labels, size_t nlabels, gw_metrics_counter **out)
{
	gw_metrics_counter *c;
	int rc;
	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return gw_error_set(GW_ERROR, "metric '%s': out of memory", name ? name : "(null)");
	if ((rc = series_register(reg, METRIC_COUNTER, name, help, labels, nlabels, c)) < 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static int gauge_register(gw_metrics *reg, const char *name, const char *help, const gw_metrics_label *labels,
			  size_t nlabels, int is_double, gw_metrics_gauge_fn fn, void *payload,
			  gw_metrics_gauge **out)
{
	gw_metrics_gauge *g;
	int rc;
	*out = NULL;
	if (!(g = calloc(1, sizeof(*g))))
		return gw_error_set(GW_ERROR, "metric '%s': out of memory", name ? name : "(null)");
	g->reg = reg;
	g->is_double = is_double;
	g->fn = fn;
	g->payload = payload;
	/* 0 and 0.0 have the same bit pattern, so calloc already set the value. */
	if ((rc = series_register(reg, METRIC_GAUGE, name, help, labels, nlabels, g)) < 0) {
		free(g);
		return rc;
	}
	*out = g;
	return 0;
}

int gw_metrics_gauge_register(gw_metrics *reg, const char *name, const char *help,
			      const gw_metrics_label *labels, size_t nlabels, gw_metrics_gauge **out)
{
	return gauge_register(reg, name, help, labels, nlabels, 0, NULL, NULL, out);
}

int gw_metrics_gauge_register_double(gw_metrics *reg, const char *name, const char *help,
				     const gw_metrics_label *labels, size_t nlabels, gw_metrics_gauge **out)
{
	return gauge_register(reg, name, help, labels, nlabels, 1, NULL, NULL, out);
}

int gw_metrics_gauge_register_fn(gw_metrics *reg, const char *name, const char *help,
				 const gw_metrics_label *labels, size_t nlabels,
				 gw_metrics_gauge_fn fn, void *payload, gw_metrics_gauge **out)
{
	if (!fn) {
		*out = NULL;
		return gw_error_set(GW_EINVALID, "metric '%s': no callback", name ? name : "(null)");
	}
	return gauge_register(reg, name, help, labels, nlabels, 1, fn, payload, out);
}

void gw_metrics_gauge_set_fn(gw_metrics_gauge *g, gw_metrics_gauge_fn fn, void *payload)
{
	if (!g)
		return;
	/* Under the registry lock, so a scrape in progress finishes with the old pair first. */
	pthread_mutex_lock(&g->reg->lock);
	g->fn = fn;
	g->payload = fn ? payload : NULL;
	pthread_mutex_unlock(&g->reg->lock);
}

int gw_metrics_histogram_register(gw_metrics *reg, const char *name, const char *help,
				  const gw_metrics_label *labels, size_t nlabels,
				  const double *bounds, size_t nbounds, gw_metrics_histogram **out)
{
	gw_metrics_histogram *h;
	size_t i;
	int rc;
	*out = NULL;
	if (nbounds > GW_METRICS_MAX_BUCKETS)
		return gw_error_set(GW_EINVALID, "metric '%s': %zu buckets, at most %d allowed",
				    name ? name : "(null)", nbounds, GW_METRICS_MAX_BUCKETS);
	if (nbounds && !bounds)
		return gw_error_set(GW_EINVALID, "metric '%s': %zu buckets but no bucket array",
				    name ? name : "(null)", nbounds);
	for (i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]))
			return gw_error_set(GW_EINVALID,
					    "metric '%s': bucket %zu is not a finite number (+Inf is implicit)",
					    name ? name : "(null)", i);
		if (i && !(bounds[i] > bounds[i - 1]))
			return gw_error_set(GW_EINVALID, "metric '%s': bucket bounds must increase (%g after %g)",
					    name ? name : "(null)", bounds[i], bounds[i - 1]);
	}
	if (!(h = calloc(1, sizeof(*h))))
		return gw_error_set(GW_ERROR, "metric '%s': out of memory", name ? name : "(null)");
	h->nbounds = nbounds;
	if (nbounds)
		memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
	if ((rc = series_register(reg, METRIC_HISTOGRAM, name, help, labels, nlabels, h)) < 0) {
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* ----------------------------------------------------------------- updates */

void gw_metrics_counter_add(gw_metrics_counter *c, uint64_t n)
{
	if (c)
		atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t gw_metrics_counter_value(const gw_metrics_counter *c)
{
	return c ? atomic_load_explicit(&((gw_metrics_counter *)c)->value, memory_order_relaxed) : 0;
}

/* double -> int64 without undefined behaviour on NaN or out-of-range values. */
static int64_t dbl_to_i64(double v)
{
	if (isnan(v))
		return 0;
	if (v >= 9223372036854775807.0)
		return INT64_MAX;
	if (v <= -9223372036854775808.0)
		return INT64_MIN;
	return (int64_t)v;
}

void gw_metrics_gauge_set(gw_metrics_gauge *g, int64_t v)
{
	if (!g)
		return;
	atomic_store_explicit(&g->bits, g->is_double ? dbl_bits((double)v) : (uint64_t)v, memory_order_relaxed);
}

void gw_metrics_gauge_add(gw_metrics_gauge *g, int64_t delta)
{
	if (!g)
		return;
	if (g->is_double)
		atomic_add_double(&g->bits, (double)delta);
	else /* two's complement: adding the unsigned image is signed addition */
		atomic_fetch_add_explicit(&g->bits, (uint64_t)delta, memory_order_relaxed);
}

void gw_metrics_gauge_set_double(gw_metrics_gauge *g, double v)
{
	if (!g)
		return;
	atomic_store_explicit(&g->bits, g->is_double ? dbl_bits(v) : (uint64_t)dbl_to_i64(v), memory_order_relaxed);
}

void gw_metrics_gauge_set_now(gw_metrics_gauge *g)
{
	struct timespec ts;
	if (!g)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gw_metrics_gauge_set_double(g, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

int64_t gw_metrics_gauge_value(const gw_metrics_gauge *g)
{
	uint64_t b;
	if (!g)
		return 0;
	b = atomic_load_explicit(&((gw_metrics_gauge *)g)->bits, memory_order_relaxed);
	return g->is_double ? dbl_to_i64(bits_dbl(b)) : (int64_t)b;
}

double gw_metrics_gauge_value_double(const gw_metrics_gauge *g)
{
	uint64_t b;
	if (!g)
		return 0;
	b = atomic_load_explicit(&((gw_metrics_gauge *)g)->bits, memory_order_relaxed);
	return g->is_double ? bits_dbl(b) : (double)(int64_t)b;
}

void gw_metrics_histogram_observe(gw_metrics_histogram *h, double v)
{
	size_t i;
	/* A NaN would poison _sum for good; it can only come from a bug upstream. */
	if (!h || isnan(v))
		return;
	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_add_double(&h->sum_bits, v);
}

uint64_t gw_metrics_histogram_count(const gw_metrics_histogram *h)
{
	uint64_t n = 0;
	size_t i;
	if (!h)
		return 0;
	for (i = 0; i <= h->nbounds; i++)
		n += atomic_load_explicit(&((gw_metrics_histogram *)h)->buckets[i], memory_order_relaxed);
	return n;
}

/* --------------------------------------------------------------- rendering */

typedef struct {
	char *p;
	size_t len, cap;
	int oom;
} strbuf;

static void sb_grow(strbuf *sb, size_t more)
{
	size_t cap;
	char *n;
	if (sb->oom || sb->len + more + 1 <= sb->cap)
		return;
	cap = sb->cap ? sb->cap : 4096;
	while (cap < sb->len + more + 1)
		cap *= 2;
	if (!(n = realloc(sb->p, cap))) {
		sb->oom = 1;
		return;
	}
	sb->p = n;
	sb->cap = cap;
}

static void sb_put(strbuf *sb, const char *s, size_t n)
{
	sb_grow(sb, n);
	if (sb->oom)
		return;
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

/*
 * Escape for a HELP line (\ and newline) or, with quotes set, for a label
 * value (also "), as the text format requires.
 */
static void sb_escaped(strbuf *sb, const char *s, int quotes)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = NULL;
		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (quotes && *s == '"')
			esc = "\\\"";
		if (!esc)
			continue;
		sb_put(sb, run, (size_t)(s - run));
		sb_puts(sb, esc);
		run = s + 1;
	}
	sb_put(sb, run, (size_t)(s - run));
}

/*
 * The shortest decimal that reads back as the same double (as Prometheus
 * client libraries print), in plain notation for ordinary magnitudes
 * ("10", "400000", "0.005") and with an exponent for the others ("1e+21",
 * "1e-05"); and the spellings Prometheus parses for the special values.
 */
static void format_double(char *buf, size_t n, double v)
{
	int digits, exp10;
	const char *e;
	if (isnan(v)) {
		snprintf(buf, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Fewest significant digits that round-trip: 17 always does. */
	for (digits = 1; digits < 17; digits++) {
		snprintf(buf, n, "%.*e", digits - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	snprintf(buf, n, "%.*e", digits - 1, v);
	e = strchr(buf, 'e');
	exp10 = e ? atoi(e + 1) : 0;
	/*
	 * %g prints plainly when -4 <= exponent < precision, so widen the
	 * precision to cover the integer digits (no digits are invented:
	 * %g drops trailing zeros).
	 */
	if (exp10 >= -4 && exp10 < 16 && exp10 + 1 > digits)
		digits = exp10 + 1;
	snprintf(buf, n, "%.*g", digits, v);
}

static void sb_double(strbuf *sb, double v)
{
	char buf[64];
	format_double(buf, sizeof(buf), v);
	sb_puts(sb, buf);
}

static void sb_u64(strbuf *sb, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	sb_puts(sb, buf);
}

static void sb_i64(strbuf *sb, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	sb_puts(sb, buf);
}

/* name{labels[,le="..."]} followed by a space; suffix is "_bucket" etc. */
static void sb_series(strbuf *sb, const struct family *f, const struct series_head *h, const char *suffix,
		      const char *le)
{
	size_t i;
	sb_puts(sb, f->name);
	sb_puts(sb, suffix);
	if (f->nlabels || le) {
		sb_puts(sb, "{");
		for (i = 0; i < f->nlabels; i++) {
			if (i)
				sb_puts(sb, ",");
			sb_puts(sb, f->label_names[i]);
			sb_puts(sb, "=\"");
			sb_escaped(sb, h->label_values[i], 1);
			sb_puts(sb, "\"");
		}
		if (le) {
			if (f->nlabels)
				sb_puts(sb, ",");
			sb_puts(sb, "le=\"");
			sb_puts(sb, le);
			sb_puts(sb, "\"");
		}
		sb_puts(sb, "}");
	}
	sb_puts(sb, " ");
}

static void render_histogram(strbuf *sb, const struct family *f, gw_metrics_histogram *h)
{
	uint64_t cum = 0;
	double sum;
	char le[64];
	size_t i;
	/*
	 * _count is the +Inf bucket by construction, not a separate counter, so
	 * a scrape during observe() is never self-contradictory. _sum may lead
	 * or trail by the observation in flight, as in other client libraries.
	 */
	for (i = 0; i <= h->nbounds; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < h->nbounds)
			format_double(le, sizeof(le), h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		sb_series(sb, f, &h->head, "_bucket", le);
		sb_u64(sb, cum);
		sb_puts(sb, "\n");
	}
	sum = bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
	sb_series(sb, f, &h->head, "_sum", NULL);
	sb_double(sb, sum);
	sb_puts(sb, "\n");
	sb_series(sb, f, &h->head, "_count", NULL);
	sb_u64(sb, cum);
	sb_puts(sb, "\n");
}

static void render_family(strbuf *sb, const struct family *f)
{
	size_t i;
	sb_puts(sb, "# HELP ");
	sb_puts(sb, f->name);
	sb_puts(sb, " ");
	sb_escaped(sb, f->help, 0);
	sb_puts(sb, "\n# TYPE ");
	sb_puts(sb, f->name);
	sb_puts(sb, " ");
	sb_puts(sb, type_names[f->type]);
	sb_puts(sb, "\n");
	for (i = 0; i < f->nseries; i++) {
		if (f->type == METRIC_COUNTER) {
			gw_metrics_counter *c = f->series[i];
			sb_series(sb, f, &c->head, "", NULL);
			sb_u64(sb, atomic_load_explicit(&c->value, memory_order_relaxed));
			sb_puts(sb, "\n");
		} else if (f->type == METRIC_GAUGE) {
			gw_metrics_gauge *g = f->series[i];
			uint64_t b;
			if (g->fn) {
				double v;
				if (g->fn(g->payload, &v) != 0)
					continue; /* the callback has nothing to report now */
				sb_series(sb, f, &g->head, "", NULL);
				sb_double(sb, v);
			} else {
				b = atomic_load_explicit(&g->bits, memory_order_relaxed);
				sb_series(sb, f, &g->head, "", NULL);
				if (g->is_double)
					sb_double(sb, bits_dbl(b));
				else
					sb_i64(sb, (int64_t)b);
			}
			sb_puts(sb, "\n");
		} else {
			render_histogram(sb, f, f->series[i]);
		}
	}
}

int gw_metrics_render(gw_metrics *reg, char **out, size_t *len)
{
	strbuf sb = { 0 };
	locale_t old;
	size_t i;

	*out = NULL;
	if (len)
		*len = 0;
	if (!reg)
		return gw_error_set(GW_EINVALID, "metrics render: no registry");
	sb_grow(&sb, 0); /* an empty registry still renders "" */
	if (!sb.oom)
		sb.p[0] = '\0';
	old = uselocale(reg->c_locale);
	pthread_mutex_lock(&reg->lock);
	for (i = 0; i < reg->nfamilies; i++)
		render_family(&sb, reg->families[i]);
	pthread_mutex_unlock(&reg->lock);
	uselocale(old);
	if (sb.oom) {
		free(sb.p);
		return gw_error_set(GW_ERROR, "metrics render: out of memory");
	}
	*out = sb.p;
	if (len)
		*len = sb.len;
	return 0;
}

/* ----------------------------------------------------- the archiver's set */

static const char *const error_kind_names[GW_METRICS_ERROR_KINDS] = { "store", "repository", "watch", "conflict",
								       "unsupported" };

const char *gw_metrics_error_kind_name(gw_metrics_error_kind kind)
{
	return (unsigned)kind < GW_METRICS_ERROR_KINDS ? error_kind_names[kind] : NULL;
}

int gw_metrics_register_archiver(gw_metrics *reg, gw_metrics_archiver *h)
{
	static const double lag_buckets[] = GW_METRICS_ARCHIVE_LAG_BUCKETS;
	static const double upload_buckets[] = GW_METRICS_UPLOAD_BUCKETS;
	int rc, k;

	memset(h, 0, sizeof(*h));
	if ((rc = gw_metrics_counter_register(reg, GW_METRIC_SEGMENTS_WRITTEN,
					      "Segments written durably to the store.", NULL, 0,
					      &h->segments_written)) < 0 ||
	    (rc = gw_metrics_counter_register(reg, GW_METRIC_SEGMENT_BYTES,
					      "Bytes of segments written durably to the store, as stored.", NULL, 0,
					      &h->segment_bytes)) < 0 ||
	    (rc = gw_metrics_counter_register(reg, GW_METRIC_FULL_BACKUPS, "Full backups completed.", NULL, 0,
					      &h->full_backups)) < 0)
		goto fail;
	for (k = 0; k < GW_METRICS_ERROR_KINDS; k++) {
		gw_metrics_label l = { "kind", error_kind_names[k] };
		if ((rc = gw_metrics_counter_register(
			     reg, GW_METRIC_ERRORS,
			     "Errors by kind: store (writing to the store), repository (reading a repository), "
			     "watch (watching repositories for changes), conflict (another writer archives the "
			     "same repository: this archiver stopped writing it), unsupported (a repository gitwal "
			     "refuses to archive: shallow, partial clone, reftable, unknown extension; once per "
			     "repository and reason).",
			     &l, 1, &h->errors[k])) < 0)
			goto fail;
	}
	if ((rc = gw_metrics_histogram_register(reg, GW_METRIC_ARCHIVE_LAG,
						"Seconds from a change on disk to its segment being durable in the store.",
						NULL, 0, lag_buckets, sizeof(lag_buckets) / sizeof(lag_buckets[0]),
						&h->archive_lag)) < 0 ||
	    (rc = gw_metrics_gauge_register(reg, GW_METRIC_SPOOL_SEGMENTS,
					    "Segments in the local spool, not yet durable in the store.", NULL, 0,
					    &h->spool_segments)) < 0 ||
	    (rc = gw_metrics_gauge_register(reg, GW_METRIC_SPOOL_BYTES,
					    "Bytes in the local spool, not yet durable in the store.", NULL, 0,
					    &h->spool_bytes)) < 0 ||
	    (rc = gw_metrics_gauge_register(reg, GW_METRIC_REPOSITORIES, "Repositories being archived.", NULL, 0,
					    &h->repositories)) < 0 ||
	    (rc = gw_metrics_gauge_register(reg, GW_METRIC_WATCHES, "Filesystem (inotify) watches in use.", NULL,
					    0, &h->watches)) < 0 ||
	    (rc = gw_metrics_gauge_register_double(
		     reg, GW_METRIC_LAST_SEGMENT_TIMESTAMP,
		     "Unix time at which the last segment became durable in the store (0: none yet).", NULL, 0,
		     &h->last_segment_timestamp)) < 0 ||
	    (rc = gw_metrics_counter_register(
		     reg, GW_METRIC_GAPS,
		     "Outages during which repository states are unknown (no point-in-time recovery inside them).",
		     NULL, 0, &h->gaps)) < 0 ||
	    (rc = gw_metrics_counter_register(reg, GW_METRIC_INOTIFY_OVERFLOWS,
					      "inotify event queue overflows (events lost; repositories rescanned).",
					      NULL, 0, &h->inotify_overflows)) < 0 ||
	    (rc = gw_metrics_gauge_register_double(
		     reg, GW_METRIC_LAST_SPOOLED_TIMESTAMP,
		     "Unix time at which the last segment became durable in the local spool (0: none yet).", NULL, 0,
		     &h->last_spooled_timestamp)) < 0 ||
	    (rc = gw_metrics_gauge_register_double(
		     reg, GW_METRIC_SPOOL_OLDEST_AGE,
		     "Seconds the oldest segment in the local spool has waited for the store (0: the spool is empty).",
		     NULL, 0, &h->spool_oldest_age)) < 0 ||
	    (rc = gw_metrics_gauge_register(reg, GW_METRIC_STORE_HEALTHY,
					    "1 while the store accepts writes, 0 from a failed store request until "
					    "the next one succeeds.",
					    NULL, 0, &h->store_healthy)) < 0 ||
	    (rc = gw_metrics_histogram_register(
		     reg, GW_METRIC_UPLOAD_DURATION, "Seconds one segment's upload from the spool to the store took.",
		     NULL, 0, upload_buckets, sizeof(upload_buckets) / sizeof(upload_buckets[0]),
		     &h->upload_seconds)) < 0)
		goto fail;
	gw_metrics_gauge_set(h->store_healthy, 1);
	return 0;
fail:
	/* Already registered series stay in the registry (freed with it); the handles go. */
	memset(h, 0, sizeof(*h));
	return gw_error_prefix("registering the archiver's metrics");
}

/* ----------------------------------------------------------- HTTP server */

/* Small on purpose: Prometheus scrapes with one connection at a time. */
#define SERVER_MAX_CONNECTIONS 16
#define SERVER_TIMEOUT_SECONDS 10

struct gw_metrics_server {
	gw_metrics *reg;
	struct MHD_Daemon *daemon;
	uint16_t port;
	/* MHD reports why it could not start only through its logger. */
	_Atomic int started;
	char start_error[256];
};

static void server_log(void *cls, const char *fmt, va_list ap)
{
	gw_metrics_server *srv = cls;
	size_t n;
	/*
	 * Keep the first message logged while starting, for the error; later
	 * ones (a client timing out) are not worth a line in the archiver log.
	 */
	if (atomic_load(&srv->started) || srv->start_error[0])
		return;
	vsnprintf(srv->start_error, sizeof(srv->start_error), fmt, ap);
	n = strlen(srv->start_error);
	while (n && (srv->start_error[n - 1] == '\n' || srv->start_error[n - 1] == '.'))
		srv->start_error[--n] = '\0';
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *body,
				    const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result server_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				     const char *version, const char *upload_data, size_t *upload_data_size,
				     void **con_cls)
{
	gw_metrics_server *srv = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text;
	size_t len;

	/*
	 * Answer on the first call, before any request body is read: no
	 * request here has a body we want, and MHD closes the connection
	 * instead of reading one it was not asked to.
	 */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
	if (strcmp(url, "/metrics"))
		return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found; metrics are at /metrics\n", NULL);
	if (gw_metrics_render(srv->reg, &text, &len) < 0)
		return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n", NULL);
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, GW_METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* Parse "HOST:PORT" into a socket address; see gw_metrics_serve(). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, int *is_v6, int *is_loopback,
		      uint16_t *port_out)
{
	char host[128];
	const char *port, *colon, *p;
	size_t hlen;
	unsigned long port_num = 0;

	memset(ss, 0, sizeof(*ss));
	if (!addr || !*addr)
		return gw_error_set(GW_EINVALID, "metrics address is empty; expected HOST:PORT, e.g. 127.0.0.1:9100");
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close)
			return gw_error_set(GW_EINVALID, "metrics address '%s': missing ']' after the IPv6 address",
					    addr);
		if (close[1] != ':')
			return gw_error_set(GW_EINVALID, "metrics address '%s': expected [IPv6]:PORT, e.g. [::1]:9100",
					    addr);
		hlen = (size_t)(close - (addr + 1));
		if (hlen >= sizeof(host))
			return gw_error_set(GW_EINVALID, "metrics address '%s': host too long", addr);
		memcpy(host, addr + 1, hlen);
		host[hlen] = '\0';
		port = close + 2;
		*is_v6 = 1;
	} else {
		if (!(colon = strrchr(addr, ':')))
			return gw_error_set(GW_EINVALID,
					    "metrics address '%s': expected HOST:PORT, e.g. 127.0.0.1:9100", addr);
		if (memchr(addr, ':', (size_t)(colon - addr)))
			return gw_error_set(GW_EINVALID,
					    "metrics address '%s': an IPv6 address needs brackets, e.g. [::1]:9100",
					    addr);
		hlen = (size_t)(colon - addr);
		if (hlen >= sizeof(host))
			return gw_error_set(GW_EINVALID, "metrics address '%s': host too long", addr);
		memcpy(host, addr, hlen);
		host[hlen] = '\0';
		port = colon + 1;
		*is_v6 = 0;
	}
	if (!host[0])
		return gw_error_set(GW_EINVALID, "metrics address '%s': missing host (e.g. 127.0.0.1)", addr);
	if (!*port)
		return gw_error_set(GW_EINVALID, "metrics address '%s': missing port", addr);
	for (p = port; *p; p++) {
		if (*p < '0' || *p > '9' || port_num > 65535)
			break;
		port_num = port_num * 10 + (unsigned long)(*p - '0');
	}
	if (*p || port_num > 65535)
		return gw_error_set(GW_EINVALID, "metrics address '%s': invalid port (expected 0 to 65535)", addr);
	*port_out = (uint16_t)port_num;

	if (*is_v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port_num);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return gw_error_set(GW_EINVALID, "metrics address '%s': '%s' is not an IPv6 address", addr,
					    host);
		*is_loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
			       (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port_num);
		/* Not resolved: "localhost" must not become whatever /etc/hosts or DNS says. */
		if (!strcasecmp(host, "localhost"))
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return gw_error_set(GW_EINVALID,
					    "metrics address '%s': host '%s' is not an IP address or localhost", addr,
					    host);
		*is_loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	return 0;
}

int gw_metrics_serve_ext(gw_metrics *reg, const char *addr, unsigned flags, gw_metrics_server **out)
{
	struct sockaddr_storage ss;
	gw_metrics_server *srv;
	const union MHD_DaemonInfo *info;
	int is_v6 = 0, is_loopback = 0, rc;
	uint16_t port = 0;
	unsigned mhd_flags;

	*out = NULL;
	if (!reg)
		return gw_error_set(GW_EINVALID, "metrics server: no registry");
	if ((rc = parse_addr(addr, &ss, &is_v6, &is_loopback, &port)) < 0)
		return rc;
	if (!is_loopback && !(flags & GW_METRICS_SERVE_ALLOW_REMOTE))
		return gw_error_set(GW_EINVALID,
				    "metrics address '%s': not a loopback address; the metrics endpoint has no "
				    "authentication, so it listens on 127.0.0.1, [::1] or localhost unless remote "
				    "access is allowed explicitly",
				    addr);
	if (!(srv = calloc(1, sizeof(*srv))))
		return gw_error_set(GW_ERROR, "metrics address '%s': out of memory", addr);
	srv->reg = reg;

	mhd_flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (is_v6)
		mhd_flags |= MHD_USE_IPv6;
	/* The logger goes first: MHD logs anything before it to stderr. */
	srv->daemon = MHD_start_daemon(mhd_flags, port, NULL, NULL, server_handle, srv,
				       MHD_OPTION_EXTERNAL_LOGGER, server_log, srv,
				       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				       MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SERVER_MAX_CONNECTIONS,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVER_TIMEOUT_SECONDS,
				       MHD_OPTION_END);
	if (!srv->daemon) {
		rc = gw_error_set(GW_EIO, "metrics address '%s': cannot listen: %s", addr,
				  srv->start_error[0] ? srv->start_error : "the HTTP server did not start");
		free(srv);
		return rc;
	}
	atomic_store(&srv->started, 1);
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = (info && info->port) ? info->port : port;
	*out = srv;
	return 0;
}

int gw_metrics_serve(gw_metrics *reg, const char *addr, gw_metrics_server **out)
{
	return gw_metrics_serve_ext(reg, addr, 0, out);
}

uint16_t gw_metrics_server_port(const gw_metrics_server *srv)
{
	return srv ? srv->port : 0;
}

void gw_metrics_server_stop(gw_metrics_server *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->daemon);
	free(srv);
}
