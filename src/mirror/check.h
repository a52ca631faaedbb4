/*-------------------------------------------------------------------------
 *
 * check.h
 *	  The background sampling check of the mirrors (almanac.verify_interval,
 *	  almanac.verify_sample).  See check.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_CHECK_H
#define ALMANAC_CHECK_H

#include "postgres.h"

#include "utils/relcache.h"

#include "mirror/mirror.h"

/* almanac.verify_interval, seconds; 0: no background check */
extern int	almanac_verify_interval;

/* the setting and shared memory; from _PG_init */
extern void almanac_mirror_check_init(void);

/* start this database's check worker unless it runs (setting > 0) */
extern void almanac_mirror_check_ensure(void);

/*
 * Compare about nrows sampled rows of the table with its mirror, under a
 * snapshot taken now (not the statement's: see check.c); LOG each
 * difference, and mark the mirror out of sync (almanac.mirrors.in_sync =
 * false) if there is one, unless its row changed since m was read.  Returns
 * how many.
 */
extern int64 almanac_mirror_sample_check(Relation rel, AlmanacMirror *m, int nrows);

extern PGDLLEXPORT void almanac_mirror_check_main(Datum arg);

#endif							/* ALMANAC_CHECK_H */
