/*-------------------------------------------------------------------------
 *
 * fault.c
 *	  Named fault points.  See fault.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "storage/pmsignal.h"
#include "utils/guc.h"

#include "fault.h"

bool		almanac_fault_armed = false;
static char *fault_point = NULL;

static void
fault_point_assign(const char *newval, void *extra)
{
	almanac_fault_armed = newval != NULL && newval[0] != '\0';
}

/*
 * If name is the armed point, stop here until killed.  Interrupts are not
 * served: the process must not go on, nor exit cleanly, but stay as a crash
 * would leave it.  Once the postmaster is gone, exit without cleaning up.
 */
void
almanac_fault_reached(const char *name)
{
	if (fault_point == NULL || strcmp(fault_point, name) != 0)
		return;
	ereport(LOG, (errmsg("almanac: fault point \"%s\" reached", name)));
	for (;;)
	{
		if (!PostmasterIsAlive())
			_exit(2);
		pg_usleep(10000L);
	}
}

/*
 * If name is the armed point, wait ms milliseconds and go on.  As at a stop,
 * interrupts are not served meanwhile.
 */
void
almanac_fault_pause(const char *name, int ms)
{
	if (fault_point == NULL || strcmp(fault_point, name) != 0)
		return;
	ereport(LOG, (errmsg("almanac: fault point \"%s\" reached", name)));
	for (int waited = 0; waited < ms; waited += 10)
	{
		if (!PostmasterIsAlive())
			_exit(2);
		pg_usleep(10000L);
	}
}

/*
 * Whether name is the armed point, for a point that changes what a process
 * does instead of stopping it (owner_skip_wal).  Callers test
 * almanac_fault_armed first, so that it costs nothing unarmed.
 */
bool
almanac_fault_is(const char *name)
{
	return fault_point != NULL && strcmp(fault_point, name) == 0;
}

void
almanac_fault_init(void)
{
	DefineCustomStringVariable("almanac.fault_point",
							   "Named point in the commit path where a process stops until it is killed (crash tests).",
							   "Empty: none.  See src/fault.h for the names.",
							   &fault_point,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   NULL, fault_point_assign, NULL);
}
