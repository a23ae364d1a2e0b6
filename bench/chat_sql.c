/*
 * chat_sql: print the SQL text of one of the chat statements (by its
 * prepared-statement name), straight from src/chat.c's table (and
 * src/limit_cluster.c's: rl_check, rl_sweep), so that
 * bench/bench_chat.sh gives pgbench exactly the text the workers prepare.
 *   chat_sql chat_messages_before
 *   chat_sql --session-options     (the workers' session settings, for PGOPTIONS)
 * With no argument, lists the names.  Links against the build's libchat.a.
 */
#include <stdio.h>
#include <string.h>

#include "chat.h"
#include "db.h"
#include "limit_cluster.h"

int main(int argc, char **argv)
{
	size_t n, n2;
	const struct db_statement *s = chat_statements(&n);
	const struct db_statement *s2 = limit_cluster_statements(&n2);

	if (argc > 1 && strcmp(argv[1], "--session-options") == 0) {
		puts(DB_SESSION_OPTIONS);
		return 0;
	}

	for (size_t i = 0; i < n; i++) {
		if (argc < 2)
			puts(s[i].name);
		else if (strcmp(s[i].name, argv[1]) == 0) {
			puts(s[i].sql);
			return 0;
		}
	}
	for (size_t i = 0; i < n2; i++) {
		if (argc < 2)
			puts(s2[i].name);
		else if (strcmp(s2[i].name, argv[1]) == 0) {
			puts(s2[i].sql);
			return 0;
		}
	}
	if (argc < 2)
		return 0;
	fprintf(stderr, "chat_sql: no statement named %s\n", argv[1]);
	return 1;
}
