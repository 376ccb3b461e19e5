-- Parquet files the current snapshot reads: data files and the delete files beside them.
-- Rows kept inside the catalog (data inlining) are in no file.
SELECT coalesce(sum(file_count + delete_file_count), 0) AS files
FROM ducklake_table_info($catalog);
