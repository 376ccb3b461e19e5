-- raw.events and vis.events hold the same events, in the same version: every id in both, the
-- same state, start and local date, and a raw payload whose id is the row's id.
SELECT r.event_id, 'in raw.events only' AS problem
FROM raw.events AS r
ANTI JOIN vis.events AS e ON e.event_id = r.event_id
UNION ALL
SELECT e.event_id, 'in vis.events only' AS problem
FROM vis.events AS e
ANTI JOIN raw.events AS r ON r.event_id = e.event_id
UNION ALL
SELECT e.event_id, 'versions differ' AS problem
FROM vis.events AS e
JOIN raw.events AS r ON r.event_id = e.event_id
WHERE e.state IS DISTINCT FROM r.state
   OR e.is_final IS DISTINCT FROM r.is_final
   OR e.start_time IS DISTINCT FROM r.start_time
   OR e.local_date IS DISTINCT FROM r.local_date
   OR e.state IS DISTINCT FROM (r.payload ->> 'state')
UNION ALL
SELECT event_id, 'payload id differs from event_id' AS problem
FROM raw.events
WHERE TRY_CAST(payload ->> 'id' AS BIGINT) IS DISTINCT FROM event_id
