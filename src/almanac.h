/*-------------------------------------------------------------------------
 *
 * almanac.h
 *	  Types and entry points shared by almanac's subsystems.
 *
 * almanac keeps chain data in two stores inside one PostgreSQL server: the
 * relational core in the tables of schema "almanac", and the hot access
 * paths in RocksDB column families exposed through a foreign data wrapper.
 * Each subsystem lives in a file named for it and declares its contract in
 * its own header; this header holds only what every file needs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_H
#define ALMANAC_H

#include "postgres.h"

/*
 * True when the library was loaded through shared_preload_libraries.  The
 * store needs a background process, hooks and shared memory, all of which can
 * only be set up at postmaster start; every entry point that relies on them
 * calls almanac_require_preload() first.
 */
extern bool almanac_preloaded;

extern void almanac_require_preload(void);

/*
 * An array kept for the process's life that grows by doubling: returns
 * 'array' (NULL at first) with room for at least n + 1 elements of 'size'
 * bytes, updating *max, its capacity.  When n >= *max it is enlarged to
 * *max doubled as often as needed (at least 'first' elements), the first
 * *max elements kept: allocated in TopMemoryContext, then repalloc'd in
 * the context it is in.  ERROR past MaxAllocSize or INT_MAX elements, or
 * out of memory, with 'array' and *max left as they were.
 */
extern void *almanac_grow_array(void *array, int n, int *max, Size size, int first);

#endif							/* ALMANAC_H */
