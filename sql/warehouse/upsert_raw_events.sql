-- Latest raw version of each event of the batch (relation batch_raw, one row per id). A final
-- version is never replaced by a live one; first_seen_at keeps the first load. Stored rows
-- are matched among local dates $first_date..$last_date only (see select_batch_outcome).
MERGE INTO raw.events AS stored
USING (
    SELECT
        event_id,
        CAST(payload AS JSON) AS payload,
        state,
        is_final,
        start_time,
        local_date,
        CAST($seen_at AS TIMESTAMPTZ) AS seen_at
    FROM batch_raw
) AS batch
ON stored.event_id = batch.event_id
    AND stored.local_date BETWEEN $first_date AND $last_date
WHEN MATCHED AND NOT (stored.is_final AND NOT batch.is_final) THEN UPDATE SET
    payload = batch.payload,
    state = batch.state,
    is_final = batch.is_final,
    start_time = batch.start_time,
    local_date = batch.local_date,
    last_seen_at = batch.seen_at
WHEN NOT MATCHED THEN INSERT (
    event_id, payload, state, is_final, start_time, local_date, first_seen_at, last_seen_at
) VALUES (
    batch.event_id, batch.payload, batch.state, batch.is_final, batch.start_time,
    batch.local_date, batch.seen_at, batch.seen_at
);
