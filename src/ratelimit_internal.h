/*
 * ratelimit_internal: what the tests and the benchmark use of ratelimit.c
 * beyond its interface.  Not for the worker or chat-admin.
 */
#ifndef CHAT_RATELIMIT_INTERNAL_H
#define CHAT_RATELIMIT_INTERNAL_H

#include "ratelimit.h"

/* Forget every key at once; counters stay.  (An operator unlinks the
 * segment instead: chat-admin ratelimit unlink.) */
void rl_reset_all(struct rl_table *t);

/* Check the header and every slot for values no correct writer produces.
 * Returns 0, or -1 with the first problem in err. O(slots). */
int rl_verify(struct rl_table *t, uint64_t now_ns, char *err, size_t errlen);

#endif
