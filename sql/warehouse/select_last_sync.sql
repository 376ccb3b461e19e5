-- The latest window sync of any status.
SELECT run_id, finished_at, status, local_date
FROM vis.sync_windows
ORDER BY sync_id DESC
LIMIT 1;
