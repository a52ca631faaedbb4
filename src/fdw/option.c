/*-------------------------------------------------------------------------
 *
 * option.c
 *	  Validator and parsers for the options of the almanac_rocksdb foreign
 *	  data wrapper (contract in option.h, user documentation in docs/usage.md,
 *	  "Keys and values").
 *
 * Each option is described once, in almanac_options[]: where it may be set,
 * and the function that checks and parses its value.  The validator and the
 * getters share those functions, so a value the validator accepted is
 * parsed the same way at use time, and an option that was set through some
 * other path (a catalog edited by hand) still fails with a clear error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/reloptions.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "fdw/option.h"

/* the wrapper's handler (fdw.c) */
extern PGDLLEXPORT Datum almanac_rocksdb_fdw_handler_sql(PG_FUNCTION_ARGS);

/* parsed value of one option; which member is set depends on the option */
typedef struct OptionValue
{
	int64		i;
	bool		b;
	char	   *s;
	List	   *list;
} OptionValue;

/* check and parse one value; ERROR naming the option if it is invalid */
typedef void (*OptionParser) (const char *name, const char *value,
							  OptionValue *out);

typedef struct AlmanacOption
{
	const char *name;
	Oid			context;		/* catalog of the object it is set on */
	OptionParser parse;
	int64		min;			/* for integer and byte-size options */
	int64		max;
	const char *accepted;		/* accepted values, for messages */
} AlmanacOption;

static void parse_path(const char *name, const char *value, OptionValue *out);
static void parse_bytes(const char *name, const char *value, OptionValue *out);
static void parse_integer(const char *name, const char *value, OptionValue *out);
static void parse_open_files(const char *name, const char *value, OptionValue *out);
static void parse_compression(const char *name, const char *value, OptionValue *out);
static void parse_direct_io(const char *name, const char *value, OptionValue *out);
static void parse_boolean(const char *name, const char *value, OptionValue *out);
static void parse_cf_name(const char *name, const char *value, OptionValue *out);
static void parse_key_name(const char *name, const char *value, OptionValue *out);
static void parse_key_columns(const char *name, const char *value, OptionValue *out);

#define KB	INT64CONST(1024)
#define MB	(KB * 1024)
#define GB	(MB * 1024)

/*
 * Defaults.  max_total_wal_size: every backend reads the store through a
 * RocksDB secondary instance, which replays the primary's unflushed WAL into
 * memtables of its own; capping the WAL makes the primary flush (and the
 * secondaries drop) memtables once that much is unflushed, so it bounds the
 * memory each backend spends on replay.  One write buffer's worth (64MB)
 * lets a busy column family flush at its natural size while a column family
 * that is written rarely cannot pin old WAL, and memory for replay across
 * 100 backends stays in the single gigabytes at worst.
 *
 * compression none: with almanac.reader_mmap each backend then searches a
 * block in place in the OS page cache, shared by all backends; a compressed
 * block must be decompressed into the backend's private block cache first,
 * which makes a fresh connection's lookups about twice as costly (reader.h,
 * docs/benchmarks.md "Fresh connections").
 */
#define DEFAULT_WRITE_BUFFER_SIZE		(64 * MB)
#define DEFAULT_MAX_WRITE_BUFFER_NUMBER 4
#define DEFAULT_MIN_WRITE_BUFFER_NUMBER_TO_MERGE 2
#define DEFAULT_MAX_OPEN_FILES			1000
#define DEFAULT_COMPRESSION				"none"
#define DEFAULT_BLOOM_BITS_PER_KEY		10
#define DEFAULT_MAX_TOTAL_WAL_SIZE		(64 * MB)

static const AlmanacOption almanac_options[] = {
	/* server: the store */
	{"path", ForeignServerRelationId, parse_path, 0, 0,
	"a directory, absolute or relative to the data directory"},
	{"write_buffer_size", ForeignServerRelationId, parse_bytes, 64 * KB, 64 * GB,
	"a size from 64kB to 64GB, in bytes or with a unit (kB, MB, GB)"},
	{"max_write_buffer_number", ForeignServerRelationId, parse_integer, 2, 64,
	"an integer from 2 to 64"},
	{"min_write_buffer_number_to_merge", ForeignServerRelationId, parse_integer, 1, 63,
	"an integer from 1 to 63, less than max_write_buffer_number"},
	{"max_open_files", ForeignServerRelationId, parse_open_files, 20, INT_MAX,
	"-1 (unlimited) or an integer of at least 20"},
	{"compression", ForeignServerRelationId, parse_compression, 0, 0,
	"none, snappy, zlib, lz4, zstd"},
	{"bloom_bits_per_key", ForeignServerRelationId, parse_integer, 0, 100,
	"an integer from 0 (no bloom filter) to 100"},
	{"use_direct_io", ForeignServerRelationId, parse_direct_io, 0, 0,
	"auto, on, off"},
	{"max_total_wal_size", ForeignServerRelationId, parse_bytes, 0, 64 * GB,
	"0 (RocksDB's own limit) or a size up to 64GB, in bytes or with a unit (kB, MB, GB)"},
	/* foreign table: its keys */
	{"column_family", ForeignTableRelationId, parse_cf_name, 0, 0,
	"a name of 1 to 63 bytes"},
	{"key_prefix", ForeignTableRelationId, parse_key_name, 0, 0,
	"a non-empty string without \":\""},
	{"key_columns", ForeignTableRelationId, parse_key_columns, 0, 0,
	"a comma-separated list of column names"},
	{"key_attribute", ForeignTableRelationId, parse_key_name, 0, 0,
	"a non-empty string without \":\""},
	{"upsert", ForeignTableRelationId, parse_boolean, 0, 0,
	"a Boolean value"},
	{"raw", ForeignTableRelationId, parse_boolean, 0, 0,
	"a Boolean value"},
	{NULL}
};

static const AlmanacOption *
find_option(const char *name, Oid context)
{
	for (const AlmanacOption *opt = almanac_options; opt->name; opt++)
		if (opt->context == context && strcmp(opt->name, name) == 0)
			return opt;
	return NULL;
}

static void invalid_value(const char *name, const char *value) pg_attribute_noreturn();

static void
invalid_value(const char *name, const char *value)
{
	const AlmanacOption *opt = NULL;

	for (const AlmanacOption *o = almanac_options; o->name; o++)
		if (strcmp(o->name, name) == 0)
			opt = o;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
			 opt ? errhint("Option \"%s\" accepts %s.", name, opt->accepted) : 0));
}

static void
check_range(const char *name, const char *value, int64 v)
{
	const AlmanacOption *opt = NULL;

	for (const AlmanacOption *o = almanac_options; o->name; o++)
		if (strcmp(o->name, name) == 0)
			opt = o;
	Assert(opt != NULL);
	if (v < opt->min || v > opt->max)
		invalid_value(name, value);
}

/* ---------------------------------------------------------------------
 * Parsers
 * ---------------------------------------------------------------------
 */

/*
 * A store directory as its owner opens it: absolute (a relative one is
 * relative to the data directory), canonical ("..", "." and doubled or
 * trailing slashes gone), and with the symbolic links of the part that
 * exists resolved.  Two spellings of one directory (a symlink, "..",
 * /proc/self/cwd) are then one path, to the key-space rules (fdw/keyspace.c
 * compare stores by path), to almanac/base's check below and to the store
 * registry alike.  A link created after the server was defined is seen at
 * the next read of the options.
 */
static char *
resolve_store_path(const char *value)
{
	char	   *path = is_absolute_path(value) ? pstrdup(value) : psprintf("%s/%s", DataDir, value);
	char	   *head;
	char	   *rest = NULL;
	char		real[PATH_MAX];

	canonicalize_path(path);
	head = pstrdup(path);
	for (;;)
	{
		char	   *slash;

		if (realpath(head, real) != NULL)
		{
			char	   *result = rest ? psprintf("%s/%s", real, rest) : pstrdup(real);

			canonicalize_path(result);
			return result;
		}
		/* not there (yet): resolve its parent, keep the rest as written */
		slash = strrchr(head, '/');
		if (slash == NULL || slash == head)
			return path;
		rest = rest ? psprintf("%s/%s", slash + 1, rest) : pstrdup(slash + 1);
		*slash = '\0';
	}
}

/*
 * A store directory, absolute or relative to the data directory; not inside
 * almanac/base, which holds the databases' own stores (an owner removes the
 * store of a dropped database, so no server may point into one), however it
 * is spelled.  The parsed value is the resolved path.
 */
static void
parse_path(const char *name, const char *value, OptionValue *out)
{
	char	   *resolved;

	if (value[0] == '\0')
		invalid_value(name, value);
	resolved = resolve_store_path(value);
	if (path_is_prefix_of_path(resolve_store_path(ALMANAC_DEFAULT_STORE_DIR), resolved))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\" is inside %s", name, value,
						ALMANAC_DEFAULT_STORE_DIR),
				 errdetail("%s holds each database's own store, removed when the database is dropped.",
						   ALMANAC_DEFAULT_STORE_DIR),
				 errhint("Leave \"path\" unset to use this database's own store, or choose a directory outside %s.",
						 ALMANAC_DEFAULT_STORE_DIR)));
	out->s = resolved;
}

/* a whole decimal integer, with optional sign; false on anything else */
static bool
parse_int64(const char *value, int64 *result, const char **end)
{
	char	   *e;
	long long	v;

	errno = 0;
	v = strtoll(value, &e, 10);
	if (e == value || errno == ERANGE)
		return false;
	*result = (int64) v;
	if (end)
		*end = e;
	else if (*e != '\0')
		return false;
	return true;
}

/*
 * A byte size: an integer, optionally followed by a unit B, kB, MB, GB or TB
 * (case-insensitive, with optional blanks between), as in postgresql.conf.
 */
static void
parse_bytes(const char *name, const char *value, OptionValue *out)
{
	static const struct
	{
		const char *unit;
		int64		mult;
	}			units[] = {
		{"b", 1}, {"kb", KB}, {"mb", MB}, {"gb", GB}, {"tb", GB * 1024}
	};
	const char *end;
	int64		v;
	int64		mult = 1;

	if (!parse_int64(value, &v, &end) || v < 0)
		invalid_value(name, value);
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0')
	{
		bool		found = false;

		for (int i = 0; i < lengthof(units); i++)
			if (pg_strcasecmp(end, units[i].unit) == 0)
			{
				mult = units[i].mult;
				found = true;
			}
		if (!found)
			invalid_value(name, value);
	}
	if (v > PG_INT64_MAX / mult)
		invalid_value(name, value);
	v *= mult;
	check_range(name, value, v);
	out->i = v;
}

static void
parse_integer(const char *name, const char *value, OptionValue *out)
{
	int64		v;

	if (!parse_int64(value, &v, NULL))
		invalid_value(name, value);
	check_range(name, value, v);
	out->i = v;
}

static void
parse_open_files(const char *name, const char *value, OptionValue *out)
{
	int64		v;

	if (!parse_int64(value, &v, NULL))
		invalid_value(name, value);
	if (v != -1)
		check_range(name, value, v);
	out->i = v;
}

static void
parse_compression(const char *name, const char *value, OptionValue *out)
{
	static const char *const methods[] = {"none", "snappy", "zlib", "lz4", "zstd"};

	for (int i = 0; i < lengthof(methods); i++)
		if (pg_strcasecmp(value, methods[i]) == 0)
		{
			out->s = pstrdup(methods[i]);
			return;
		}
	invalid_value(name, value);
}

static void
parse_direct_io(const char *name, const char *value, OptionValue *out)
{
	bool		b;

	if (pg_strcasecmp(value, "auto") == 0)
		out->i = ALMANAC_DIRECT_IO_AUTO;
	else if (parse_bool(value, &b))
		out->i = b ? ALMANAC_DIRECT_IO_ON : ALMANAC_DIRECT_IO_OFF;
	else
		invalid_value(name, value);
}

static void
parse_boolean(const char *name, const char *value, OptionValue *out)
{
	if (!parse_bool(value, &out->b))
		invalid_value(name, value);
}

static void
parse_cf_name(const char *name, const char *value, OptionValue *out)
{
	/* requests to the owner carry it in a NAMEDATALEN field */
	if (value[0] == '\0' || strlen(value) >= NAMEDATALEN)
		invalid_value(name, value);
	out->s = pstrdup(value);
}

/* key_prefix, key_attribute: they delimit keys, so no separator inside */
static void
parse_key_name(const char *name, const char *value, OptionValue *out)
{
	if (value[0] == '\0' || strchr(value, ALMANAC_KEY_SEP) != NULL)
		invalid_value(name, value);
	out->s = pstrdup(value);
}

/*
 * key_columns: column names separated by commas, read as SQL identifiers
 * (blanks ignored, unquoted names folded to lower case, "Quoted" kept).  The
 * columns themselves are resolved at use time (almanac_key_attnums): the
 * validator does not see the table.
 */
static void
parse_key_columns(const char *name, const char *value, OptionValue *out)
{
	char	   *copy = pstrdup(value);
	List	   *names = NIL;
	ListCell   *lc;

	if (!SplitIdentifierString(copy, ',', &names) || names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errhint("Option \"%s\" accepts a comma-separated list of column names, such as 'chain_id, block_number'.", name)));

	out->list = NIL;
	foreach(lc, names)
	{
		char	   *col = (char *) lfirst(lc);
		ListCell   *prev;

		foreach(prev, out->list)
			if (strcmp(strVal(lfirst(prev)), col) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": column \"%s\" is listed twice",
								name, col)));
		out->list = lappend(out->list, makeString(pstrdup(col)));
	}
}

/* ---------------------------------------------------------------------
 * Validator
 * ---------------------------------------------------------------------
 */

static const char *
context_name(Oid context)
{
	switch (context)
	{
		case ForeignDataWrapperRelationId:
			return "foreign-data wrapper";
		case ForeignServerRelationId:
			return "server";
		case UserMappingRelationId:
			return "user mapping";
		case ForeignTableRelationId:
			return "foreign table";
		case AttributeRelationId:
			return "column";
		default:
			return "object";
	}
}

/*
 * The store directory decides where a server process writes files, so it is
 * reserved to roles that may write server files anyway, as for COPY TO a
 * file.
 */
static void
check_path_privilege(void)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"path\""),
				 errdetail("Only superusers and roles with privileges of the pg_write_server_files role may choose the directory of an almanac store."),
				 errhint("Leave \"path\" unset to use the database's own store, %s/<database oid> in the data directory.",
						 ALMANAC_DEFAULT_STORE_DIR)));
}

PG_FUNCTION_INFO_V1(almanac_rocksdb_fdw_validator_sql);
Datum
almanac_rocksdb_fdw_validator_sql(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			context = PG_GETARG_OID(1);
	ListCell   *lc;
	bool		have_prefix = false;
	bool		have_columns = false;
	bool		raw = false;
	bool		have_cf = false;
	const char *key_option = NULL;
	const char *prefix = NULL;
	int64		max_buffers = DEFAULT_MAX_WRITE_BUFFER_NUMBER;
	int64		min_merge = -1;
	bool		max_buffers_set = false;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const AlmanacOption *opt = find_option(def->defname, context);
		const char *value;
		OptionValue parsed = {0};

		if (opt == NULL)
		{
			StringInfoData valid;

			initStringInfo(&valid);
			for (const AlmanacOption *o = almanac_options; o->name; o++)
				if (o->context == context)
					appendStringInfo(&valid, "%s%s", valid.len > 0 ? ", " : "",
									 o->name);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for a %s of almanac_rocksdb",
							def->defname, context_name(context)),
					 valid.len > 0
					 ? errhint("Valid options in this context are: %s.", valid.data)
					 : errhint("There are no valid options in this context.")));
		}

		value = defGetString(def);
		opt->parse(def->defname, value, &parsed);

		if (strcmp(opt->name, "path") == 0)
			check_path_privilege();
		else if (strcmp(opt->name, "max_write_buffer_number") == 0)
		{
			max_buffers = parsed.i;
			max_buffers_set = true;
		}
		else if (strcmp(opt->name, "min_write_buffer_number_to_merge") == 0)
			min_merge = parsed.i;
		else if (strcmp(opt->name, "key_prefix") == 0)
		{
			have_prefix = true;
			prefix = value;
		}
		else if (strcmp(opt->name, "key_columns") == 0)
			have_columns = true;
		else if (strcmp(opt->name, "raw") == 0)
			raw = parsed.b;
		else if (strcmp(opt->name, "column_family") == 0)
			have_cf = true;
		if (strcmp(opt->name, "key_prefix") == 0 || strcmp(opt->name, "key_columns") == 0 ||
			strcmp(opt->name, "key_attribute") == 0 || strcmp(opt->name, "upsert") == 0)
			key_option = opt->name;
	}

	/* a raw table is a column family's keys and values as they are */
	if (context == ForeignTableRelationId && raw)
	{
		if (key_option != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" cannot be used with option \"raw\"", key_option),
					 errhint("A raw table shows a column family's keys as they are; it has no key layout.")));
		if (!have_cf)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
					 errmsg("a raw foreign table of almanac_rocksdb needs option \"column_family\"")));
		PG_RETURN_VOID();
	}

	/* without column_family, the key prefix names the column family */
	if (context == ForeignTableRelationId && !have_cf && prefix != NULL &&
		strlen(prefix) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"key_prefix\" is too long to name the column family: \"%s\"", prefix),
				 errhint("Name the column family with option \"column_family\" (1 to 63 bytes).")));

	/* RocksDB merges only buffers that are not the one being written */
	if (min_merge >= max_buffers)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"min_write_buffer_number_to_merge\" (" INT64_FORMAT ") must be less than \"max_write_buffer_number\" (" INT64_FORMAT "%s)",
						min_merge, max_buffers,
						max_buffers_set ? "" : ", the default")));

	if (context == ForeignTableRelationId && (!have_prefix || !have_columns))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
				 errmsg("a foreign table of almanac_rocksdb needs option \"%s\"",
						have_prefix ? "key_columns" : "key_prefix"),
				 errhint("Keys are key_prefix:key_columns[:key_attribute], for example OPTIONS (key_prefix 'block', key_columns 'chain_id, block_number').")));

	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Getters
 * ---------------------------------------------------------------------
 */

/* parse one option with its own parser; the validator accepted it */
static void
parse_def(DefElem *def, Oid context, OptionValue *out)
{
	const AlmanacOption *opt = find_option(def->defname, context);

	if (opt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for a %s of almanac_rocksdb",
						def->defname, context_name(context))));
	opt->parse(def->defname, defGetString(def), out);
}

AlmanacServerOptions *
almanac_server_options(Oid serverid)
{
	ForeignServer *server = GetForeignServer(serverid);
	AlmanacServerOptions *opts = palloc0(sizeof(AlmanacServerOptions));
	const char *path = NULL;
	bool		min_merge_set = false;
	ListCell   *lc;

	opts->write_buffer_size = DEFAULT_WRITE_BUFFER_SIZE;
	opts->max_write_buffer_number = DEFAULT_MAX_WRITE_BUFFER_NUMBER;
	opts->min_write_buffer_number_to_merge = DEFAULT_MIN_WRITE_BUFFER_NUMBER_TO_MERGE;
	opts->max_open_files = DEFAULT_MAX_OPEN_FILES;
	opts->compression = pstrdup(DEFAULT_COMPRESSION);
	opts->bloom_bits_per_key = DEFAULT_BLOOM_BITS_PER_KEY;
	opts->use_direct_io = ALMANAC_DIRECT_IO_AUTO;
	opts->max_total_wal_size = DEFAULT_MAX_TOTAL_WAL_SIZE;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		OptionValue v = {0};

		parse_def(def, ForeignServerRelationId, &v);
		if (strcmp(def->defname, "path") == 0)
			path = v.s;
		else if (strcmp(def->defname, "write_buffer_size") == 0)
			opts->write_buffer_size = v.i;
		else if (strcmp(def->defname, "max_write_buffer_number") == 0)
			opts->max_write_buffer_number = (int) v.i;
		else if (strcmp(def->defname, "min_write_buffer_number_to_merge") == 0)
		{
			opts->min_write_buffer_number_to_merge = (int) v.i;
			min_merge_set = true;
		}
		else if (strcmp(def->defname, "max_open_files") == 0)
			opts->max_open_files = (int) v.i;
		else if (strcmp(def->defname, "compression") == 0)
			opts->compression = v.s;
		else if (strcmp(def->defname, "bloom_bits_per_key") == 0)
			opts->bloom_bits_per_key = (int) v.i;
		else if (strcmp(def->defname, "use_direct_io") == 0)
			opts->use_direct_io = (int) v.i;
		else if (strcmp(def->defname, "max_total_wal_size") == 0)
			opts->max_total_wal_size = v.i;
	}

	/* the default merge count yields to a smaller max_write_buffer_number */
	if (!min_merge_set &&
		opts->min_write_buffer_number_to_merge >= opts->max_write_buffer_number)
		opts->min_write_buffer_number_to_merge = opts->max_write_buffer_number - 1;

	/*
	 * Without "path", the database's own store: two databases never share
	 * rows unless a role allowed to choose directories points servers of
	 * both at one on purpose.
	 */
	if (path == NULL)
	{
		opts->path = psprintf("%s/%s/%u", DataDir, ALMANAC_DEFAULT_STORE_DIR,
							  MyDatabaseId);
		opts->database = MyDatabaseId;
	}
	else
		opts->path = pstrdup(path);	/* resolved by parse_path */
	canonicalize_path(opts->path);

	return opts;
}

AlmanacTableOptions *
almanac_table_options(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	AlmanacTableOptions *opts = palloc0(sizeof(AlmanacTableOptions));
	ListCell   *lc;

	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		OptionValue v = {0};

		parse_def(def, ForeignTableRelationId, &v);
		if (strcmp(def->defname, "column_family") == 0)
			opts->column_family = v.s;
		else if (strcmp(def->defname, "key_prefix") == 0)
			opts->key_prefix = v.s;
		else if (strcmp(def->defname, "key_columns") == 0)
			opts->key_columns = v.list;
		else if (strcmp(def->defname, "key_attribute") == 0)
			opts->key_attribute = v.s;
		else if (strcmp(def->defname, "upsert") == 0)
			opts->upsert = v.b;
		else if (strcmp(def->defname, "raw") == 0)
			opts->raw = v.b;
	}

	if (opts->raw)
		return opts;			/* the validator required column_family */
	if (opts->key_prefix == NULL || opts->key_columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
				 errmsg("foreign table \"%s\" has no option \"%s\"",
						get_rel_name(relid),
						opts->key_prefix == NULL ? "key_prefix" : "key_columns"),
				 errhint("Set it with ALTER FOREIGN TABLE ... OPTIONS (ADD ...).")));

	/* one column family per entity type, as the design has it */
	if (opts->column_family == NULL)
		opts->column_family = pstrdup(opts->key_prefix);

	return opts;
}

AttrNumber *
almanac_key_attnums(Relation rel, const AlmanacTableOptions *opts)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber *attnums = palloc(sizeof(AttrNumber) * Max(list_length(opts->key_columns), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, opts->key_columns)
	{
		const char *col = strVal(lfirst(lc));
		AttrNumber	attnum = InvalidAttrNumber;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), col) == 0)
			{
				attnum = att->attnum;
				almanac_key_check_type(att->atttypid, col);
				break;
			}
		}
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" of foreign table \"%s\" does not exist",
							col, RelationGetRelationName(rel)),
					 errhint("Option key_columns names columns of the table, in key order.")));
		for (int i = 0; i < n; i++)
			if (attnums[i] == attnum)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("key column \"%s\" of foreign table \"%s\" is listed twice",
								col, RelationGetRelationName(rel))));
		attnums[n++] = attnum;
	}
	return attnums;
}

AlmanacKeyLayout *
almanac_table_key_layout(Relation rel, const AlmanacTableOptions *opts,
						 AttrNumber **attnums_out)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber *attnums = almanac_key_attnums(rel, opts);
	int			nkeys = list_length(opts->key_columns);
	AlmanacKeyLayout *layout = palloc0(sizeof(AlmanacKeyLayout));
	Oid		   *typids = palloc(sizeof(Oid) * Max(nkeys, 1));
	const char **names = palloc(sizeof(char *) * Max(nkeys, 1));

	for (int i = 0; i < nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, attnums[i] - 1);

		typids[i] = att->atttypid;
		names[i] = pstrdup(NameStr(att->attname));
	}
	layout->prefix = opts->key_prefix;
	layout->nkeys = nkeys;
	layout->typids = typids;
	layout->names = names;
	layout->attribute = opts->key_attribute;

	if (attnums_out)
		*attnums_out = attnums;
	return layout;
}

/* ---------------------------------------------------------------------
 * Internal SQL functions, for the tests: the getters' view of an object
 * ---------------------------------------------------------------------
 */

/* almanac._server_options(server oid) RETURNS text[]: {name=value, ...} */
PG_FUNCTION_INFO_V1(almanac_server_options_sql);
Datum
almanac_server_options_sql(PG_FUNCTION_ARGS)
{
	AlmanacServerOptions *o = almanac_server_options(PG_GETARG_OID(0));
	static const char *const direct_io[] = {"auto", "on", "off"};
	Datum		items[9];

	items[0] = CStringGetTextDatum(psprintf("path=%s", o->path));
	items[1] = CStringGetTextDatum(psprintf("write_buffer_size=" INT64_FORMAT, o->write_buffer_size));
	items[2] = CStringGetTextDatum(psprintf("max_write_buffer_number=%d", o->max_write_buffer_number));
	items[3] = CStringGetTextDatum(psprintf("min_write_buffer_number_to_merge=%d", o->min_write_buffer_number_to_merge));
	items[4] = CStringGetTextDatum(psprintf("max_open_files=%d", o->max_open_files));
	items[5] = CStringGetTextDatum(psprintf("compression=%s", o->compression));
	items[6] = CStringGetTextDatum(psprintf("bloom_bits_per_key=%d", o->bloom_bits_per_key));
	items[7] = CStringGetTextDatum(psprintf("use_direct_io=%s", direct_io[o->use_direct_io]));
	items[8] = CStringGetTextDatum(psprintf("max_total_wal_size=" INT64_FORMAT, o->max_total_wal_size));
	PG_RETURN_ARRAYTYPE_P(construct_array(items, lengthof(items), TEXTOID, -1,
										  false, TYPALIGN_INT));
}

/*
 * almanac._table_options(foreign_table regclass) RETURNS text[]:
 * {name=value, ...} with key_columns resolved to "name attnum type".
 */
PG_FUNCTION_INFO_V1(almanac_table_options_sql);
Datum
almanac_table_options_sql(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AlmanacTableOptions *o = almanac_table_options(relid);
	Relation	rel = relation_open(relid, AccessShareLock);
	AttrNumber *attnums;
	AlmanacKeyLayout *layout = almanac_table_key_layout(rel, o, &attnums);
	StringInfoData cols;
	Datum		items[5];

	initStringInfo(&cols);
	for (int i = 0; i < layout->nkeys; i++)
		appendStringInfo(&cols, "%s%s %d %s", i > 0 ? ", " : "",
						 layout->names[i], attnums[i],
						 format_type_be(layout->typids[i]));
	items[0] = CStringGetTextDatum(psprintf("column_family=%s", o->column_family));
	items[1] = CStringGetTextDatum(psprintf("key_prefix=%s", o->key_prefix));
	items[2] = CStringGetTextDatum(psprintf("key_columns=%s", cols.data));
	items[3] = CStringGetTextDatum(psprintf("key_attribute=%s",
											o->key_attribute ? o->key_attribute : "(none)"));
	items[4] = CStringGetTextDatum(psprintf("upsert=%s", o->upsert ? "true" : "false"));
	relation_close(rel, AccessShareLock);
	PG_RETURN_ARRAYTYPE_P(construct_array(items, lengthof(items), TEXTOID, -1,
										  false, TYPALIGN_INT));
}

/*
 * The handler's symbol is checked in pg_proc first, so that the library of
 * another wrapper's handler is not loaded just to be told apart.
 */
bool
almanac_wrapper_is_ours(Oid fdwid)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(fdwid);
	HeapTuple	tup;
	bool		same_symbol;
	FmgrInfo	finfo;

	if (!OidIsValid(fdw->fdwhandler))
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fdw->fdwhandler));
	if (!HeapTupleIsValid(tup))
		return false;
	same_symbol = false;
	if (((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId)
	{
		bool		isnull;
		Datum		prosrc = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

		same_symbol = !isnull &&
			strcmp(TextDatumGetCString(prosrc), "almanac_rocksdb_fdw_handler_sql") == 0;
	}
	ReleaseSysCache(tup);
	if (!same_symbol)
		return false;
	fmgr_info(fdw->fdwhandler, &finfo);
	return finfo.fn_addr == almanac_rocksdb_fdw_handler_sql;
}

bool
almanac_server_uses_store(Oid serverid, const char *path)
{
	ForeignServer *server = GetForeignServer(serverid);

	return almanac_wrapper_is_ours(server->fdwid) &&
		strcmp(almanac_server_options(serverid)->path, path) == 0;
}

List *
almanac_store_servers(const char *path)
{
	Relation	rel = table_open(ForeignServerRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	List	   *servers = NIL;
	HeapTuple	tup;

	while ((tup = systable_getnext(scan)) != NULL)
	{
		Oid			serverid = ((Form_pg_foreign_server) GETSTRUCT(tup))->oid;

		if (almanac_server_uses_store(serverid, path))
			servers = lappend_oid(servers, serverid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return servers;
}

const char *
almanac_server_tuning_difference(const AlmanacServerOptions *a, const AlmanacServerOptions *b)
{
	if (a->write_buffer_size != b->write_buffer_size)
		return "write_buffer_size";
	if (a->max_write_buffer_number != b->max_write_buffer_number)
		return "max_write_buffer_number";
	if (a->min_write_buffer_number_to_merge != b->min_write_buffer_number_to_merge)
		return "min_write_buffer_number_to_merge";
	if (a->max_open_files != b->max_open_files)
		return "max_open_files";
	if (strcmp(a->compression, b->compression) != 0)
		return "compression";
	if (a->bloom_bits_per_key != b->bloom_bits_per_key)
		return "bloom_bits_per_key";
	if (a->use_direct_io != b->use_direct_io)
		return "use_direct_io";
	if (a->max_total_wal_size != b->max_total_wal_size)
		return "max_total_wal_size";
	return NULL;
}

bool
almanac_reserved_column_family(const char *name)
{
	return strcmp(name, "default") == 0 || strncmp(name, "mirror.", 7) == 0;
}
