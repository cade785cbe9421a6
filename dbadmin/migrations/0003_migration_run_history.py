# migration_run is the history of what administrators did to the database. The commands write
# it as the runtime role (they run as the platform does), so that role must not be able to
# rewrite it: a run is inserted, finished once (from "running" to its outcome, with its
# summary and report), and then frozen. DELETE and TRUNCATE are revoked from the runtime role
# (rcm/db/roles.py); this trigger refuses a finished run's rewrite, and any change to who
# started a run and when. A restore replaces the whole table as the owner, which drops and
# recreates the trigger with it.

from django.db import migrations

CREATE_SQL = """
CREATE FUNCTION migration_run_history() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.outcome = 'running'
           AND (NEW.migration_run_id, NEW.kind, NEW.started_at, NEW.run_by)
               IS NOT DISTINCT FROM (OLD.migration_run_id, OLD.kind, OLD.started_at, OLD.run_by)
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'migration_run keeps its history: a finished run, and who started a run '
                        'when, are never changed (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$;
CREATE TRIGGER migration_run_history BEFORE UPDATE OR DELETE ON migration_run
    FOR EACH ROW EXECUTE FUNCTION migration_run_history();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS migration_run_history ON migration_run;
DROP FUNCTION IF EXISTS migration_run_history();
"""


class Migration(migrations.Migration):
    dependencies = [("dbadmin", "0002_legacy_id_map")]

    operations = [migrations.RunSQL(CREATE_SQL, DROP_SQL)]
