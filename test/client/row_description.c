/*
 * row_description CONNINFO QUERY N: what a client learns from the protocol's
 * RowDescription message about each column of QUERY's result: its table
 * (PQftable) and column number (PQftablecol), after one run through the
 * simple protocol and after N executions of it prepared (the extended
 * protocol, as pgbench -M prepared and JDBC run it: Bind, Describe of the
 * portal, Execute).  Prints one line per protocol, "name=table.column ...",
 * then the rows of the last result.  Used by test/t/034_router_executor_hooks.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <libpq-fe.h>

static void
describe(const char *what, PGresult *r)
{
	printf("%s:", what);
	for (int i = 0; i < PQnfields(r); i++)
		printf(" %s=%u.%d", PQfname(r, i), PQftable(r, i), PQftablecol(r, i));
	printf("\n");
}

static PGresult *
check(PGconn *c, PGresult *r, ExecStatusType want)
{
	if (PQresultStatus(r) != want)
	{
		fprintf(stderr, "row_description: %s", PQerrorMessage(c));
		exit(1);
	}
	return r;
}

int
main(int argc, char **argv)
{
	PGconn	   *c;
	PGresult   *r = NULL;
	int			n;

	if (argc != 4)
	{
		fprintf(stderr, "usage: row_description CONNINFO QUERY N\n");
		return 2;
	}
	n = atoi(argv[3]);
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "row_description: %s", PQerrorMessage(c));
		return 1;
	}
	r = check(c, PQexec(c, argv[2]), PGRES_TUPLES_OK);
	describe("simple", r);
	PQclear(r);
	r = NULL;
	PQclear(check(c, PQprepare(c, "q", argv[2], 0, NULL), PGRES_COMMAND_OK));
	for (int i = 0; i < n; i++)
	{
		if (r)
			PQclear(r);
		r = check(c, PQexecPrepared(c, "q", 0, NULL, NULL, NULL, 0), PGRES_TUPLES_OK);
	}
	describe("prepared", r);
	for (int i = 0; i < PQntuples(r); i++)
		for (int j = 0; j < PQnfields(r); j++)
			printf("%s%s", PQgetvalue(r, i, j), j + 1 < PQnfields(r) ? "|" : "\n");
	PQclear(r);
	PQfinish(c);
	return 0;
}
