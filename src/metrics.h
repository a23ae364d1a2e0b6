/*
 * metrics: request, rate-limit and database counters summed over every
 * worker, served as Prometheus text (format 0.0.4) on GET /metrics.
 *
 * The counters live in the extension area of the shared segment
 * (segment.h; one segment, one lifetime with the rate-limit table); every worker adds to them
 * with relaxed atomic adds, so a scrape of any worker sees the sum.  The
 * area carries its own layout number, stamped by the first worker to use
 * it.  /metrics answers only clients in METRICS_ALLOW (404 to others, like
 * any unknown path).
 */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct worker;
struct metrics_shm;
struct rl_table;
struct segment;

/* Claim (or check) the metrics area of the shared segment. */
int metrics_attach(const struct segment *seg, struct metrics_shm **out, char *err, size_t errlen);

/* One answered request: route index (-1 if no route matched), status, time. */
void metrics_record(struct metrics_shm *m, int route_index, int status, uint64_t duration_ns);

/* Database events since the last call (deltas of struct db's counters). */
void metrics_add_db(struct metrics_shm *m, uint64_t connects, uint64_t connect_failures,
                    uint64_t errors);

/* One security event (audit.h's enum audit_event). */
void metrics_add_event(struct metrics_shm *m, int event);

/* The exposition text, malloc'd into *out. */
int metrics_render(struct metrics_shm *m, struct rl_table *rl, char **out, size_t *len);

void metrics_handler(struct worker *w, struct request *req, struct response *res);

#endif
