-- Of the asked local dates, those holding events landed by webhooks after the date's latest
-- successful sync (or never synced): the API's count has not been checked against them yet, so
-- the date is not settled whatever its counts say.
WITH wanted AS (
    SELECT DISTINCT UNNEST(CAST($local_dates AS DATE[])) AS local_date
),
synced AS (
    SELECT local_date, max(finished_at) AS finished_at
    FROM vis.sync_windows
    WHERE status IN ('loaded', 'settled')
      AND local_date IN (SELECT local_date FROM wanted)
    GROUP BY local_date
),
landed AS (
    SELECT local_date, max(landed_at) AS landed_at
    FROM vis.webhook_landings
    WHERE local_date IN (SELECT local_date FROM wanted)
    GROUP BY local_date
)
SELECT landed.local_date
FROM landed
LEFT JOIN synced USING (local_date)
WHERE synced.finished_at IS NULL OR landed.landed_at > synced.finished_at
ORDER BY landed.local_date;
