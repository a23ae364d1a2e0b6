/*
 * health: liveness (/healthz, no database) and readiness (/readyz, one
 * prepared SELECT 1) for load balancers and orchestrators.
 */
#ifndef CHAT_HEALTH_H
#define CHAT_HEALTH_H

#include <stddef.h>

#include "http.h"

struct worker;
struct db_statement;

const struct db_statement *health_statements(size_t *count);
void health_healthz(struct worker *w, struct request *req, struct response *res);
void health_readyz(struct worker *w, struct request *req, struct response *res);

#endif
