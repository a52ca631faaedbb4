/*-------------------------------------------------------------------------
 *
 * bigendian.h
 *	  Integers in big-endian byte order at unaligned addresses: the way
 *	  every almanac format stores them (version lists and intents,
 *	  codec/visibility.h; request payloads, store/payload.h; the freeze
 *	  horizon, store/maintenance.c).  Big-endian, so that a key or value
 *	  compares and reads the same on any machine.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_BIGENDIAN_H
#define ALMANAC_BIGENDIAN_H

#include "lib/stringinfo.h"
#include "port/pg_bswap.h"

static inline uint16
almanac_get_be16(const char *p)
{
	uint16		v;

	memcpy(&v, p, 2);
	return pg_ntoh16(v);
}

static inline uint32
almanac_get_be32(const char *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return pg_ntoh32(v);
}

static inline uint64
almanac_get_be64(const char *p)
{
	uint64		v;

	memcpy(&v, p, 8);
	return pg_ntoh64(v);
}

static inline void
almanac_put_be16(char *p, uint16 v)
{
	v = pg_hton16(v);
	memcpy(p, &v, 2);
}

static inline void
almanac_put_be32(char *p, uint32 v)
{
	v = pg_hton32(v);
	memcpy(p, &v, 4);
}

static inline void
almanac_put_be64(char *p, uint64 v)
{
	v = pg_hton64(v);
	memcpy(p, &v, 8);
}

static inline void
almanac_append_be16(StringInfo buf, uint16 v)
{
	v = pg_hton16(v);
	appendBinaryStringInfo(buf, (char *) &v, 2);
}

static inline void
almanac_append_be32(StringInfo buf, uint32 v)
{
	v = pg_hton32(v);
	appendBinaryStringInfo(buf, (char *) &v, 4);
}

static inline void
almanac_append_be64(StringInfo buf, uint64 v)
{
	v = pg_hton64(v);
	appendBinaryStringInfo(buf, (char *) &v, 8);
}

#endif							/* ALMANAC_BIGENDIAN_H */
