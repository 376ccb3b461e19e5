-- Latest clean version of each event of the batch (relation batch_events). A final version is
-- never replaced by a live one.
INSERT INTO vis.events (
    event_id, external_id, record_type, account_id, user_id, uci_id, direction, caller_id,
    phone_number, state, is_final, start_time, answer_time, end_time, duration_ms, sms_data,
    local_date, synced_at
)
SELECT
    event_id, external_id, record_type, account_id, user_id, uci_id, direction, caller_id,
    phone_number, state, is_final, start_time, answer_time, end_time, duration_ms, sms_data,
    local_date, synced_at
FROM batch_events
ON CONFLICT (event_id) DO UPDATE SET
    external_id = excluded.external_id,
    record_type = excluded.record_type,
    account_id = excluded.account_id,
    user_id = excluded.user_id,
    uci_id = excluded.uci_id,
    direction = excluded.direction,
    caller_id = excluded.caller_id,
    phone_number = excluded.phone_number,
    state = excluded.state,
    is_final = excluded.is_final,
    start_time = excluded.start_time,
    answer_time = excluded.answer_time,
    end_time = excluded.end_time,
    duration_ms = excluded.duration_ms,
    sms_data = excluded.sms_data,
    local_date = excluded.local_date,
    synced_at = excluded.synced_at
WHERE NOT (vis.events.is_final AND NOT excluded.is_final);
