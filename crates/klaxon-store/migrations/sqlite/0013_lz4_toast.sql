-- PostgreSQL compresses wide values with lz4 from here on. SQLite does not
-- compress values: nothing to do.
SELECT 1;
