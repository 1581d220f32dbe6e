-- PostgreSQL drops the alerts → integrations foreign key here (a trigger per
-- inserted row there). SQLite checks it with an index lookup, cheaply, and
-- cannot drop a constraint without rebuilding the table: nothing to do.
SELECT 1;
