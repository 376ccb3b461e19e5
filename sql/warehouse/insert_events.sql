-- Every event of the batch (relation batch_events) when vis.events holds none of its ids yet:
-- upsert_events without matching every row against the stored ones.
INSERT INTO vis.events (
    event_id, external_id, record_type, account_id, user_id, uci_id, direction, caller_id,
    phone_number, state, is_final, start_time, answer_time, end_time, duration_ms, sms_data,
    local_date, synced_at
)
SELECT
    event_id, external_id, record_type, account_id, user_id, uci_id, direction, caller_id,
    phone_number, state, is_final, start_time, answer_time, end_time, duration_ms, sms_data,
    local_date, synced_at
FROM batch_events;
