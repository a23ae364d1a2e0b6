/*
 * rss_floor: the memory of a process that only links Debian's libpq, opens
 * one TLS connection the way a worker does and runs SELECT 1: the floor
 * under a worker's RSS, which counts every shared-library page a process
 * has mapped (bench/run.sh prints it next to the workers' figures).
 *   rss_floor 'host=... sslmode=verify-full ...'
 * Prints "RSS PSS PRIVATE" in KiB from /proc/self/smaps_rollup.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	char line[256];
	long rss = -1, pss = -1, private_kib = 0, v;
	FILE *f;
	PGconn *conn;

	if (argc != 2) {
		fputs("usage: rss_floor CONNINFO\n", stderr);
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "rss_floor: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(PQexec(conn, "SELECT 1"));
	f = fopen("/proc/self/smaps_rollup", "r");
	if (!f)
		return 1;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "Rss: %ld", &v) == 1)
			rss = v;
		else if (sscanf(line, "Pss: %ld", &v) == 1)
			pss = v;
		else if (sscanf(line, "Private_Clean: %ld", &v) == 1 ||
		         sscanf(line, "Private_Dirty: %ld", &v) == 1)
			private_kib += v;
	}
	fclose(f);
	printf("%ld %ld %ld\n", rss, pss, private_kib);
	PQfinish(conn);
	return 0;
}
