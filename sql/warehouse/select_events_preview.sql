-- The first events of a range of local dates, by start time, for a glance at what was loaded.
SELECT
    event_id, local_date, start_time, direction, state, duration_ms, user_id, caller_id,
    phone_number
FROM vis.events
WHERE local_date BETWEEN CAST($first AS DATE) AND CAST($last AS DATE)
ORDER BY start_time, event_id
LIMIT $limit;
