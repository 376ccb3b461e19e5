-- Local dates whose latest sync failed.
SELECT local_date
FROM vis.sync_windows
GROUP BY local_date
HAVING arg_max(status, sync_id) = 'failed'
ORDER BY local_date;
