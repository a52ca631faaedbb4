/*
 * option.c: interim option parsing (replaced by the validated version).
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "keycodec.h"
#include "option.h"

AlmanacServerOptions *
almanac_server_options(Oid serverid)
{
	ForeignServer *server = GetForeignServer(serverid);
	AlmanacServerOptions *o = palloc0(sizeof(AlmanacServerOptions));
	ListCell   *lc;

	o->path = psprintf("%s/almanac/store", DataDir);
	o->write_buffer_size = 64 * 1024 * 1024;
	o->max_write_buffer_number = 4;
	o->min_write_buffer_number_to_merge = 2;
	o->max_open_files = 1000;
	o->compression = "lz4";
	o->bloom_bits_per_key = 10;
	o->use_direct_io = ALMANAC_DIRECT_IO_AUTO;
	o->max_total_wal_size = 32 * 1024 * 1024;
	foreach(lc, server->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "path") == 0)
			o->path = defGetString(d);
	}
	return o;
}

AlmanacTableOptions *
almanac_table_options(Oid relid)
{
	ForeignTable *ft = GetForeignTable(relid);
	AlmanacTableOptions *o = palloc0(sizeof(AlmanacTableOptions));
	ListCell   *lc;

	o->column_family = get_rel_name(relid);
	foreach(lc, ft->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "column_family") == 0)
			o->column_family = defGetString(d);
		else if (strcmp(d->defname, "key_prefix") == 0)
			o->key_prefix = defGetString(d);
		else if (strcmp(d->defname, "key_attribute") == 0)
			o->key_attribute = defGetString(d);
		else if (strcmp(d->defname, "upsert") == 0)
			o->upsert = defGetBoolean(d);
		else if (strcmp(d->defname, "key_columns") == 0)
		{
			char	   *s = pstrdup(defGetString(d));

			if (!SplitIdentifierString(s, ',', &o->key_columns))
				elog(ERROR, "bad key_columns");
		}
	}
	if (o->key_prefix == NULL || o->key_columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" needs the options key_prefix and key_columns",
						get_rel_name(relid))));
	return o;
}

AttrNumber *
almanac_key_attnums(Relation rel, const AlmanacTableOptions *opts)
{
	AttrNumber *a = palloc(sizeof(AttrNumber) * list_length(opts->key_columns));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, opts->key_columns)
	{
		char	   *name = lfirst(lc);
		AttrNumber	attno = InvalidAttrNumber;

		for (int j = 0; j < RelationGetDescr(rel)->natts; j++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), j);

			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			{
				attno = att->attnum;
				almanac_key_check_type(att->atttypid, name);
			}
		}
		if (attno == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" of foreign table \"%s\" does not exist",
							name, RelationGetRelationName(rel))));
		a[i++] = attno;
	}
	return a;
}

PG_FUNCTION_INFO_V1(almanac_rocksdb_fdw_validator);
Datum
almanac_rocksdb_fdw_validator(PG_FUNCTION_ARGS)
{
	PG_RETURN_VOID();
}
