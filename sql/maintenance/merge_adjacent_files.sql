-- Small files of the same table and partition (one per daily commit) merged into few. The
-- snapshots keep reading their own rows of the merged file: time travel is unchanged.
-- Returns the files merged.
SELECT coalesce(sum(files_processed), 0) AS files_merged
FROM ducklake_merge_adjacent_files($catalog);
