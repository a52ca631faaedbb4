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

#endif							/* ALMANAC_H */
