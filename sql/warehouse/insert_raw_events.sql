-- Every raw record of the batch (relation batch_raw) when raw.events holds none of its ids yet:
-- upsert_raw_events without matching every row against the stored ones.
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
FROM batch_raw;
