-- Local dates between the first and the last successfully synced day that have no successful
-- sync. Dates are generated as plain timestamps, so no time zone shifts them.
WITH synced AS (
    SELECT DISTINCT local_date
    FROM vis.sync_windows
    WHERE status IN ('loaded', 'settled')
),
bounds AS (
    SELECT CAST(min(local_date) AS TIMESTAMP) AS first_day, CAST(max(local_date) AS TIMESTAMP) AS last_day
    FROM synced
)
SELECT CAST(day AS DATE) AS local_date
FROM bounds, generate_series(bounds.first_day, bounds.last_day, INTERVAL 1 DAY) AS days(day)
WHERE CAST(day AS DATE) NOT IN (SELECT local_date FROM synced)
ORDER BY local_date;
