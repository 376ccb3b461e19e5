-- The lake's tables (not its views), each with its columns' types and whether each takes NULL,
-- in column order: what a placeholder row for the table must hold.
SELECT
    columns.schema_name,
    columns.table_name,
    list(columns.data_type ORDER BY columns.column_index) AS data_types,
    list(columns.is_nullable ORDER BY columns.column_index) AS nullable
FROM duckdb_columns() AS columns
SEMI JOIN duckdb_tables() AS tables
    ON tables.database_name = columns.database_name
    AND tables.schema_name = columns.schema_name
    AND tables.table_name = columns.table_name
WHERE columns.database_name = current_database()
GROUP BY columns.schema_name, columns.table_name
ORDER BY columns.schema_name, columns.table_name;
