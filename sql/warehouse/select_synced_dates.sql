-- Local dates with at least one successful sync ('loaded' or 'settled'), oldest first.
SELECT DISTINCT local_date
FROM vis.sync_windows
WHERE status IN ('loaded', 'settled')
ORDER BY local_date;
