-- A mirror is right only while its triggers fire on every write
-- (docs/router.md, "Maintenance").  DISABLE TRIGGER (by hand, or pg_restore
-- --disable-triggers), ENABLE TRIGGER without ALWAYS (then writes under
-- session_replication_role = replica skip them), DROP TRIGGER, or CREATE OR
-- REPLACE TRIGGER with another function let rows reach the heap without
-- their mirror, and the router would answer them wrongly.  At the end of
-- each such command this marks every enabled mirror whose three triggers
-- are not all in place and enabled ALWAYS out of sync, in the command's own
-- transaction: the router reads the heap until almanac.resync rewrites the
-- mirror (with the triggers back).  Marking is sticky: enabling the
-- triggers again does not bring back the rows they missed.
--
-- SECURITY DEFINER: any role's ALTER TABLE of its own tables runs this, and
-- the check must not depend on that role's privileges on almanac.mirrors.
CREATE FUNCTION almanac._mirror_triggers_check() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	t regclass;
BEGIN
	FOR t IN
		UPDATE almanac.mirrors m SET in_sync = false
		 WHERE m.enabled AND m.in_sync
		   AND (SELECT count(DISTINCT g.tgfoid) FROM pg_trigger g
				 WHERE g.tgrelid = m.relid AND g.tgenabled = 'A'
				   AND g.tgfoid IN ('almanac._mirror_row()'::regprocedure,
									'almanac._mirror_statement()'::regprocedure,
									'almanac._mirror_truncate()'::regprocedure)) < 3
		RETURNING m.relid
	LOOP
		RAISE WARNING 'mirror of table % marked out of sync: its triggers no longer fire on every write', t
			USING HINT = format('Lookups read the heap until the triggers are enabled again (ENABLE ALWAYS TRIGGER) and almanac.resync(%L) has run.', t::text);
	END LOOP;
END;
$$;
COMMENT ON FUNCTION almanac._mirror_triggers_check() IS
	'internal: marks a mirror out of sync when its triggers were disabled, dropped or replaced';

CREATE EVENT TRIGGER almanac_mirror_triggers ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TRIGGER', 'DROP TRIGGER')
	EXECUTE FUNCTION almanac._mirror_triggers_check();
-- also under session_replication_role = replica, where the mirrors' own
-- triggers fire (ENABLE ALWAYS) and a trigger disabled there matters as much
ALTER EVENT TRIGGER almanac_mirror_triggers ENABLE ALWAYS;
