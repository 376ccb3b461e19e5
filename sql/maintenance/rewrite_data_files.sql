-- Files whose rows are mostly deleted (re-synced days replace their events, reports replace
-- their days) rewritten without the deleted rows. Returns the files rewritten.
SELECT coalesce(sum(files_processed), 0) AS files_rewritten
FROM ducklake_rewrite_data_files($catalog, delete_threshold => $delete_threshold);
