-- Latest clean version of each event of the batch (relation batch_events, one row per id). A
-- final version is never replaced by a live one. Stored rows are matched
-- among local dates $first_date..$last_date only (see select_batch_outcome).
MERGE INTO vis.events AS stored
USING batch_events AS batch
ON stored.event_id = batch.event_id
    AND stored.local_date BETWEEN $first_date AND $last_date
WHEN MATCHED AND NOT (stored.is_final AND NOT batch.is_final) THEN UPDATE SET
    external_id = batch.external_id,
    record_type = batch.record_type,
    account_id = batch.account_id,
    user_id = batch.user_id,
    uci_id = batch.uci_id,
    direction = batch.direction,
    caller_id = batch.caller_id,
    phone_number = batch.phone_number,
    state = batch.state,
    is_final = batch.is_final,
    start_time = batch.start_time,
    answer_time = batch.answer_time,
    end_time = batch.end_time,
    duration_ms = batch.duration_ms,
    sms_data = batch.sms_data,
    local_date = batch.local_date,
    synced_at = batch.synced_at
WHEN NOT MATCHED THEN INSERT (
    event_id, external_id, record_type, account_id, user_id, uci_id, direction, caller_id,
    phone_number, state, is_final, start_time, answer_time, end_time, duration_ms, sms_data,
    local_date, synced_at
) VALUES (
    batch.event_id, batch.external_id, batch.record_type, batch.account_id, batch.user_id,
    batch.uci_id, batch.direction, batch.caller_id, batch.phone_number, batch.state,
    batch.is_final, batch.start_time, batch.answer_time, batch.end_time, batch.duration_ms,
    batch.sms_data, batch.local_date, batch.synced_at
);
