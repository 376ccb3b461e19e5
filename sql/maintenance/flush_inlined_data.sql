-- Rows small commits left inside the catalog (data inlining) written out to Parquet, so the
-- catalog database stays small; the merge that follows folds the new files into their
-- neighbours. Returns the rows written.
SELECT coalesce(sum(rows_flushed), 0) AS rows_flushed
FROM ducklake_flush_inlined_data($catalog);
