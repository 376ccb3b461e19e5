-- Options of the DuckLake catalog (kept in the catalog, so every writer uses them). zstd suits
-- the long JSON payloads of raw.events. Commits of up to 100 rows (a day's sync record, the
-- account, the users) are kept inside the catalog instead of as one tiny Parquet file each.
CALL warehouse.set_option('parquet_compression', 'zstd');
CALL warehouse.set_option('data_inlining_row_limit', '100');
