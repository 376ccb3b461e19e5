-- The tables (views and macros left out) of one attached database: the lake ('warehouse') or
-- the warehouse file of an earlier version being imported.
SELECT schema_name, table_name
FROM duckdb_tables()
WHERE database_name = $database
ORDER BY schema_name, table_name
