/*-------------------------------------------------------------------------
 *
 * import.c
 *	  IMPORT FOREIGN SCHEMA for almanac_rocksdb: one raw foreign table
 *	  (key bytea, value bytea) per column family of the server's store.
 *
 *		IMPORT FOREIGN SCHEMA rocksdb FROM SERVER almanac_store INTO raw;
 *
 * The remote schema name is not used (a store has no schemas); LIMIT TO
 * and EXCEPT name column families, and the core applies them to the
 * statements returned here.  A raw table reads every key of its column
 * family, whatever table wrote it: "key" is the RocksDB key, "value" the
 * encoded row the snapshot sees (fdw.h).  It is read-only.
 *
 * The column families are read from the store's MANIFEST, as RocksDB's own
 * ldb does; a store that was never written has none.  A store that cannot
 * be read is an ERROR.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"

#include "fdw/fdw.h"
#include "kv/rocks.h"

/* RocksDB's column family that every store has, and almanac never writes */
#define DEFAULT_CF "default"

/*
 * ImportForeignSchema: a CREATE FOREIGN TABLE statement per column family,
 * built with quote_identifier and quote_literal_cstr.
 */
List *
almanacImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	AlmanacServerOptions *opts = almanac_server_options(serverOid);
	char	   *err;
	List	   *names;
	List	   *commands = NIL;
	ListCell   *lc;

	/* a store never written has no CURRENT file yet, and nothing to import */
	if (access(psprintf("%s/CURRENT", opts->path), F_OK) != 0 && errno == ENOENT)
		return NIL;
	names = almanac_rocks_column_families(NULL, opts->path, &err);
	almanac_rocks_error(ERROR, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION, err,
						"could not read the column families of almanac store \"%s\"", opts->path);

	foreach(lc, names)
	{
		const char *name = lfirst(lc);

		if (strcmp(name, DEFAULT_CF) == 0)
			continue;
		commands = lappend(commands,
						   psprintf("CREATE FOREIGN TABLE %s (key bytea, value bytea) "
									"SERVER %s OPTIONS (raw 'true', column_family %s)",
									quote_identifier(name),
									quote_identifier(server->servername),
									quote_literal_cstr(name)));
	}
	return commands;
}
