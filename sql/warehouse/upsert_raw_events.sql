-- Latest raw version of each event of the batch (relation batch_raw). A final version is never
-- replaced by a live one; first_seen_at keeps the first load.
INSERT INTO raw.events (
    event_id, payload, state, is_final, start_time, local_date, first_seen_at, last_seen_at
)
SELECT
    event_id,
    CAST(payload AS JSON),
    state,
    is_final,
    start_time,
    local_date,
    CAST($seen_at AS TIMESTAMPTZ),
    CAST($seen_at AS TIMESTAMPTZ)
FROM batch_raw
ON CONFLICT (event_id) DO UPDATE SET
    payload = excluded.payload,
    state = excluded.state,
    is_final = excluded.is_final,
    start_time = excluded.start_time,
    local_date = excluded.local_date,
    last_seen_at = excluded.last_seen_at
WHERE NOT (raw.events.is_final AND NOT excluded.is_final);
