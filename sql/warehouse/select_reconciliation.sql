-- For each asked local date: the event count the API reported at the latest successful sync,
-- the distinct event ids the warehouse holds for it (clean events plus rejected records that
-- carry an id), and how many of its clean events are still live.
WITH wanted AS (
    SELECT DISTINCT UNNEST(CAST($local_dates AS DATE[])) AS local_date
),
latest AS (
    SELECT local_date, arg_max(api_count, sync_id) AS api_count
    FROM vis.sync_windows
    WHERE status IN ('loaded', 'settled')
      AND local_date IN (SELECT local_date FROM wanted)
    GROUP BY local_date
),
held AS (
    SELECT local_date, count(DISTINCT event_id) AS loaded
    FROM (
        SELECT local_date, event_id FROM vis.events
        UNION ALL
        SELECT local_date, event_id FROM vis.rejected_events WHERE event_id IS NOT NULL
    )
    WHERE local_date IN (SELECT local_date FROM wanted)
    GROUP BY local_date
),
live AS (
    SELECT local_date, count(*) AS live
    FROM vis.events
    WHERE NOT is_final AND local_date IN (SELECT local_date FROM wanted)
    GROUP BY local_date
)
SELECT
    wanted.local_date,
    latest.api_count,
    coalesce(held.loaded, 0) AS loaded,
    coalesce(live.live, 0) AS live
FROM wanted
LEFT JOIN latest USING (local_date)
LEFT JOIN held USING (local_date)
LEFT JOIN live USING (local_date)
ORDER BY wanted.local_date;
