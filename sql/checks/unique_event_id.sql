-- Each event is stored once: no event id twice in vis.events or raw.events, and no two raw rows
-- whose payloads carry the same id. One row per offending id.
SELECT 'vis.events' AS table_name, event_id, count(*) AS copies
FROM vis.events
GROUP BY event_id
HAVING count(*) > 1
UNION ALL
SELECT 'raw.events' AS table_name, event_id, count(*) AS copies
FROM raw.events
GROUP BY event_id
HAVING count(*) > 1
UNION ALL
SELECT 'raw.events payload' AS table_name, TRY_CAST(payload ->> 'id' AS BIGINT) AS event_id, count(*) AS copies
FROM raw.events
GROUP BY payload ->> 'id'
HAVING count(*) > 1
