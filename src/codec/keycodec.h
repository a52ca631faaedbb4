/*-------------------------------------------------------------------------
 *
 * keycodec.h
 *	  RocksDB key layout of almanac's foreign tables.
 *
 * A key is
 *
 *		prefix ':' segment_1 ':' ... ':' segment_n [ ':' attribute ]
 *
 * where prefix is the table's key_prefix (the entity type), the segments are
 * the key_columns' values in order and attribute is the optional
 * key_attribute.  Neither prefix nor attribute may contain ':' (the option
 * validator refuses them).  Segments:
 *
 *	smallint/integer/bigint  2/4/8 bytes big-endian; negative values are
 *							 refused, so byte order is numeric order
 *	uuid					 its 16 bytes; byte order is uuid order
 *	text/varchar/bytea		 the bytes, with '\' written as "\\" and ':' as
 *							 "\:" (so a segment ends at the first unescaped
 *							 ':', and "eth" never prefixes "eth:x")
 *	char(n)					 as text, without trailing blanks (bpchar
 *							 equality ignores them)
 *	a domain over one of these: as its base type
 *
 * A layout may mark integer key columns descending: their segment is the
 * bitwise complement of the big-endian bytes, so byte order is the reverse
 * of numeric order (the events mirror's block_number and log_index, so that
 * "newest first" is a forward iteration, which RocksDB serves faster than a
 * reverse one).  A descending segment always has its top bit set and an
 * ascending one never, so a key of one direction never decodes as the other.
 *
 * Keys of one layout sort, bytewise (RocksDB's default comparator), by their
 * columns in order as long as those columns are integers or uuids; text and
 * bytea segments are unambiguous but their byte order is not SQL's order.
 *
 * Every function allocates in CurrentMemoryContext and reports user errors
 * with ereport.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_KEYCODEC_H
#define ALMANAC_KEYCODEC_H

#include "postgres.h"

#include "lib/stringinfo.h"

typedef struct AlmanacKeyLayout
{
	const char *prefix;			/* entity type */
	int			nkeys;			/* number of key columns */
	const Oid  *typids;			/* type of each key column */
	const char *const *names;	/* column names, for messages */
	const char *attribute;		/* NULL when none */
	const bool *descending;		/* per key column, integers only; NULL: none */
} AlmanacKeyLayout;

/* key column col of the layout is stored in descending byte order */
#define ALMANAC_KEY_DESCENDING(layout, col) \
	((layout)->descending != NULL && (layout)->descending[col])

/* longest key, in bytes, that almanac writes */
#define ALMANAC_KEY_MAX_LEN 1024

/* the separator between prefix, segments and attribute */
#define ALMANAC_KEY_SEP ':'

/* true if values of this type (or of a domain over it) can be key segments */
extern bool almanac_key_type_supported(Oid typid);

/* ERROR 0A000 naming the column and its type if not supported */
extern void almanac_key_check_type(Oid typid, const char *colname);

/*
 * True if the byte order of the segment equals SQL's default btree order for
 * the type (integers, uuid): ORDER BY and range quals on the column may be
 * pushed down.  Only these types can be the bounded column of
 * almanac_key_encode_bound().
 */
extern bool almanac_key_type_orders(Oid typid);

/*
 * True if the value can appear in a key at all.  False for negative integers
 * and for text or bytea longer than a whole key: almanac_key_encode() raises
 * 22003 or 54000 for them, which is right for a write; a scan whose equality
 * qual has such a value simply matches nothing.
 */
extern bool almanac_key_value_in_domain(Oid typid, Datum value);

/*
 * Append the key for the first n key values (0 <= n <= nkeys) to buf.
 *
 * !prefix_only: n must equal nkeys; the full key, with ":attribute" when the
 * layout has one.
 *
 * prefix_only: "prefix:" followed by the n segments, each followed by ':'
 * ("prefix:" alone for n == 0).  This is the byte prefix shared by exactly
 * the keys whose first n columns equal these values, so [it, its successor)
 * is the scan range for an equality on those columns.  With n == nkeys and an
 * attribute the result ends with the last segment plus ':' as well.  With
 * n == nkeys and no attribute there is nothing after the last segment, so
 * the result is the full key itself (no trailing ':'): a point lookup, not a
 * prefix for a scan (a text key "eth" is a byte prefix of the key of "ethx").
 *
 * values must not be NULL (the caller raises 23502).  Errors: 22003 for a
 * negative integer, 0A000 for an unsupported type, 54000 when the key would
 * be longer than ALMANAC_KEY_MAX_LEN.
 */
extern void almanac_key_encode(StringInfo buf, const AlmanacKeyLayout *layout,
							   int n, const Datum *values, bool prefix_only);

/* comparison of the bounded column in almanac_key_encode_bound() */
typedef enum AlmanacKeyBound
{
	ALMANAC_KEY_GE,				/* column >= value: inclusive lower bound */
	ALMANAC_KEY_GT,				/* column >  value: inclusive lower bound */
	ALMANAC_KEY_LE,				/* column <= value: exclusive upper bound */
	ALMANAC_KEY_LT				/* column <  value: exclusive upper bound */
} AlmanacKeyBound;

/*
 * Append one bound of a range scan to buf.  values[0 .. n-2] are equalities
 * on the first n-1 key columns; key column n-1 (an ordering type, see
 * almanac_key_type_orders, 1 <= n <= nkeys) is compared with values[n-1].
 *
 * For ALMANAC_KEY_GE/GT the bound is an inclusive lower bound (the Seek()
 * target): every key satisfying the equalities and the comparison is >= it,
 * every key of the same equality group that fails the comparison is < it.
 * For ALMANAC_KEY_LE/LT it is an exclusive upper bound (RocksDB's
 * iterate_upper_bound): every satisfying key is < it, every failing key of
 * the group is >= it.  Example, chain_id = 'eth' AND block_number BETWEEN a
 * AND b: [bound(GE, eth, a), bound(LE, eth, b)).  Because separators in
 * text segments are escaped, the keys of this layout between the two bounds
 * are exactly the satisfying ones, whatever the types of the equality
 * columns.
 *
 * Returns false, leaving buf unchanged, when no key can satisfy the
 * comparison (column < 0 or <= negative); a negative value in a lower bound
 * is the start of the group.  Errors as almanac_key_encode.
 *
 * A descending column (ALMANAC_KEY_DESCENDING) reverses the roles in key
 * order: GE/GT give the exclusive upper bound and LE/LT the inclusive lower
 * one (a negative value in GE/GT: the end of the group).  Whatever the
 * direction, the satisfying keys of the group are those at or after the
 * lower bound and before the upper one.
 */
extern bool almanac_key_encode_bound(StringInfo buf,
									 const AlmanacKeyLayout *layout, int n,
									 const Datum *values, AlmanacKeyBound bound);

/*
 * Replace buf->data[start ..] by its successor: the smallest byte string
 * greater than every string that has it as a prefix (trailing 0xFF bytes
 * dropped, the last other byte incremented).  The exclusive upper bound of a
 * prefix scan.  Returns false, leaving buf unchanged, if there is none (all
 * bytes 0xFF); never the case for a key prefix, which contains ':'.
 */
extern bool almanac_key_successor(StringInfo buf, int start);

/*
 * Decode a full key produced with this layout into values (palloc'd in
 * CurrentMemoryContext, of each column's base type).  Returns false if the
 * bytes do not have this layout: wrong prefix or attribute, bad escape, wrong
 * width, negative integer, missing separator or trailing bytes.
 */
extern bool almanac_key_decode(const char *key, size_t len,
							   const AlmanacKeyLayout *layout, Datum *values);

/* a bytea holding a copy of len bytes (palloc'd) */
extern bytea *almanac_bytes_to_bytea(const char *data, size_t len);

/* a stored key for messages: printable bytes as they are, others as \xNN */
extern char *almanac_key_for_message(const char *key, size_t len);

#endif							/* ALMANAC_KEYCODEC_H */
