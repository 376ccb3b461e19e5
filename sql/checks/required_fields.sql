-- Columns fed by required fields hold a value. One row per row missing any, naming the columns.
SELECT 'vis.events' AS table_name, event_id, concat_ws(', ',
    CASE WHEN event_id IS NULL THEN 'event_id' END,
    CASE WHEN record_type IS NULL THEN 'record_type' END,
    CASE WHEN account_id IS NULL THEN 'account_id' END,
    CASE WHEN user_id IS NULL THEN 'user_id' END,
    CASE WHEN uci_id IS NULL THEN 'uci_id' END,
    CASE WHEN direction IS NULL THEN 'direction' END,
    CASE WHEN phone_number IS NULL THEN 'phone_number' END,
    CASE WHEN state IS NULL THEN 'state' END,
    CASE WHEN is_final IS NULL THEN 'is_final' END,
    CASE WHEN start_time IS NULL THEN 'start_time' END,
    CASE WHEN local_date IS NULL THEN 'local_date' END,
    CASE WHEN synced_at IS NULL THEN 'synced_at' END
) AS missing
FROM vis.events
WHERE event_id IS NULL OR record_type IS NULL OR account_id IS NULL OR user_id IS NULL
   OR uci_id IS NULL OR direction IS NULL OR phone_number IS NULL OR state IS NULL
   OR is_final IS NULL OR start_time IS NULL OR local_date IS NULL OR synced_at IS NULL
UNION ALL
SELECT 'raw.events' AS table_name, event_id, concat_ws(', ',
    CASE WHEN event_id IS NULL THEN 'event_id' END,
    CASE WHEN payload IS NULL THEN 'payload' END,
    CASE WHEN state IS NULL THEN 'state' END,
    CASE WHEN is_final IS NULL THEN 'is_final' END,
    CASE WHEN start_time IS NULL THEN 'start_time' END,
    CASE WHEN local_date IS NULL THEN 'local_date' END
) AS missing
FROM raw.events
WHERE event_id IS NULL OR payload IS NULL OR state IS NULL OR is_final IS NULL
   OR start_time IS NULL OR local_date IS NULL
