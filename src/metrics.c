/*
 * metrics: shared counters and their Prometheus exposition.  See metrics.h.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "limit.h"
#include "netaddr.h"
#include "ratelimit.h"
#include "reply.h"
#include "router.h"
#include "segment.h"
#include "util.h"
#include "worker.h"

#define METRICS_LAYOUT     1u
#define METRICS_MAX_ROUTES 32 /* the route table, plus "unmatched" */
#define METRICS_MAX_EVENTS 16 /* audit.h's events */

_Static_assert(AUDIT_EVENTS <= METRICS_MAX_EVENTS, "every security event has a counter");

/* Statuses the API answers with; anything else is counted as "other". */
static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
                               409, 413, 415, 422, 429, 500, 503};
#define NSTATUS (sizeof statuses / sizeof statuses[0] + 1)

/* Histogram upper bounds in microseconds (le="0.001" ... "2.5"). */
static const uint64_t bucket_us[] = {1000,   2500,   5000,   10000,   25000,  50000,
                                     100000, 250000, 500000, 1000000, 2500000};
#define NBUCKETS (sizeof bucket_us / sizeof bucket_us[0])

struct metrics_shm {
	_Atomic uint32_t layout; /* 0 until the first worker stamps it */
	uint32_t max_routes;
	_Atomic uint64_t requests[METRICS_MAX_ROUTES][NSTATUS];
	/* Per bucket, not cumulative: a request adds to one counter only. */
	_Atomic uint64_t duration[METRICS_MAX_ROUTES][NBUCKETS + 1];
	_Atomic uint64_t duration_sum_us[METRICS_MAX_ROUTES];
	_Atomic uint64_t db_connects;
	_Atomic uint64_t db_connect_failures;
	_Atomic uint64_t db_errors;
	/* Appended after layout 1's first fields; an older worker never
	 * touches them, so the layout number stays. */
	_Atomic uint64_t security_events[METRICS_MAX_EVENTS];
};

_Static_assert(sizeof(struct metrics_shm) <= SEG_EXTENSION_BYTES, "metrics fit the extension");

int metrics_attach(const struct segment *seg, struct metrics_shm **out, char *err, size_t errlen)
{
	struct metrics_shm *m = seg_extension(seg);
	uint32_t expect = 0;

	if (router_count() + 1 > METRICS_MAX_ROUTES) {
		snprintf(err, errlen, "metrics: %zu routes, room for %d", router_count(),
		         METRICS_MAX_ROUTES - 1);
		return -1;
	}
	/* Whoever comes first stamps the layout; everyone checks it. */
	if (!atomic_compare_exchange_strong(&m->layout, &expect, METRICS_LAYOUT) &&
	    expect != METRICS_LAYOUT) {
		snprintf(err, errlen, "metrics area has layout %u, this build expects %u", expect,
		         METRICS_LAYOUT);
		return -1;
	}
	*out = m;
	return 0;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i + 1 < NSTATUS; i++)
		if (statuses[i] == status)
			return i;
	return NSTATUS - 1;
}

void metrics_record(struct metrics_shm *m, int route_index, int status, uint64_t duration_ns)
{
	size_t r = route_index < 0 ? router_count() : (size_t)route_index;
	uint64_t us = duration_ns / 1000;
	size_t b = 0;

	if (!m)
		return;
	while (b < NBUCKETS && us > bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&m->requests[r][status_index(status)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->duration[r][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->duration_sum_us[r], us, memory_order_relaxed);
}

void metrics_add_db(struct metrics_shm *m, uint64_t connects, uint64_t connect_failures,
                    uint64_t errors)
{
	if (!m)
		return;
	if (connects)
		atomic_fetch_add_explicit(&m->db_connects, connects, memory_order_relaxed);
	if (connect_failures)
		atomic_fetch_add_explicit(&m->db_connect_failures, connect_failures,
		                          memory_order_relaxed);
	if (errors)
		atomic_fetch_add_explicit(&m->db_errors, errors, memory_order_relaxed);
}

void metrics_add_event(struct metrics_shm *m, int event)
{
	if (m && event >= 0 && event < AUDIT_EVENTS)
		atomic_fetch_add_explicit(&m->security_events[event], 1, memory_order_relaxed);
}

static const char *route_label(size_t r)
{
	return r < router_count() ? router_at(r)->name : "unmatched";
}

static void render_requests(struct metrics_shm *m, FILE *f)
{
	fputs("# HELP chat_http_requests_total Requests answered, by route and status.\n"
	      "# TYPE chat_http_requests_total counter\n",
	      f);
	for (size_t r = 0; r <= router_count(); r++)
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t v = atomic_load_explicit(&m->requests[r][s], memory_order_relaxed);
			if (!v)
				continue;
			if (s + 1 < NSTATUS)
				fprintf(
				    f,
				    "chat_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    route_label(r), statuses[s], (unsigned long long)v);
			else
				fprintf(f,
				        "chat_http_requests_total{route=\"%s\",status=\"other\"} "
				        "%llu\n",
				        route_label(r), (unsigned long long)v);
		}
}

static void render_durations(struct metrics_shm *m, FILE *f)
{
	fputs("# HELP chat_http_request_duration_seconds Time from accept to answer, by route.\n"
	      "# TYPE chat_http_request_duration_seconds histogram\n",
	      f);
	for (size_t r = 0; r <= router_count(); r++) {
		uint64_t counts[NBUCKETS + 1], total = 0, cumulative = 0;

		for (size_t b = 0; b <= NBUCKETS; b++) {
			counts[b] = atomic_load_explicit(&m->duration[r][b], memory_order_relaxed);
			total += counts[b];
		}
		if (!total)
			continue;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cumulative += counts[b];
			fprintf(f,
			        "chat_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
			        "%llu\n",
			        route_label(r), (double)bucket_us[b] / 1e6,
			        (unsigned long long)cumulative);
		}
		fprintf(
		    f, "chat_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
		    route_label(r), (unsigned long long)total);
		fprintf(f, "chat_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
		        route_label(r),
		        (double)atomic_load_explicit(&m->duration_sum_us[r], memory_order_relaxed) /
		            1e6);
		fprintf(f, "chat_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		        route_label(r), (unsigned long long)total);
	}
}

static void counter(FILE *f, const char *name, const char *help, _Atomic uint64_t *v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
	        (unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
}

static void render_rate_limits(struct rl_table *rl, FILE *f)
{
	struct rl_stats st;

	rl_stats(rl, util_now_ns(), &st);
	fputs("# HELP chat_rate_limit_rejections_total Requests refused by the rate limiter.\n"
	      "# TYPE chat_rate_limit_rejections_total counter\n",
	      f);
	for (size_t c = 0; c < LIMIT_CLASSES; c++)
		fprintf(f, "chat_rate_limit_rejections_total{class=\"%s\"} %llu\n",
		        limit_class_name((enum limit_class)c),
		        (unsigned long long)st.classes[c].rejected);
	fprintf(
	    f,
	    "# HELP chat_rate_limit_slots_in_use Rate-limit slots holding a key still limited.\n"
	    "# TYPE chat_rate_limit_slots_in_use gauge\nchat_rate_limit_slots_in_use %llu\n"
	    "# HELP chat_rate_limit_slots Size of the rate-limit table.\n"
	    "# TYPE chat_rate_limit_slots gauge\nchat_rate_limit_slots %llu\n",
	    (unsigned long long)st.in_use, (unsigned long long)st.slots);
}

/* Every event, zeros included, so an alert rule never sees a series
 * appear out of nothing.  config_rejected stays 0 here: a worker refused at
 * start-up has no segment to count in; its log line is the record. */
static void render_events(struct metrics_shm *m, FILE *f)
{
	fputs("# HELP chat_security_events_total Security events (see the log's \"security\" "
	      "lines).\n"
	      "# TYPE chat_security_events_total counter\n",
	      f);
	for (int e = 0; e < AUDIT_EVENTS; e++)
		fprintf(f, "chat_security_events_total{event=\"%s\"} %llu\n", audit_event_name(e),
		        (unsigned long long)atomic_load_explicit(&m->security_events[e],
		                                                 memory_order_relaxed));
}

int metrics_render(struct metrics_shm *m, struct rl_table *rl, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);

	if (!f)
		return -1;
	render_requests(m, f);
	render_durations(m, f);
	render_rate_limits(rl, f);
	counter(f, "chat_db_connects_total", "Database connections opened (first and reconnects).",
	        &m->db_connects);
	counter(f, "chat_db_connect_failures_total", "Database connection attempts that failed.",
	        &m->db_connect_failures);
	counter(f, "chat_db_errors_total", "Statements that failed (any reason).", &m->db_errors);
	render_events(m, f);
	return fclose(f) == 0 ? 0 : -1;
}

void metrics_handler(struct worker *w, struct request *req, struct response *res)
{
	struct netaddr client;

	/* Behind a trusted proxy the proxy's loopback address must not open
	 * the door: check the real client, as the rate limiter sees it. */
	if (netaddr_client(req->remote_addr, req->x_forwarded_for, &w->cfg.trusted_proxies,
	                   &client) != 0 ||
	    !cidr_list_contains(&w->cfg.metrics_allow, &client) || !w->metrics) {
		audit_note(req, AUDIT_METRICS_DENIED, NULL);
		reply_not_found(res);
		return;
	}
	if (metrics_render(w->metrics, w->rl, &res->text, &res->text_len) != 0) {
		reply_internal(res);
		return;
	}
	res->status = 200;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
