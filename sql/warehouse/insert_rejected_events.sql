-- The rejected records of the batch (relation batch_rejected), filed under their window.
INSERT INTO vis.rejected_events (
    event_id, reason, payload, window_start, window_end, local_date, run_id, rejected_at
)
SELECT
    event_id,
    reason,
    CAST(payload AS JSON),
    CAST($window_start AS TIMESTAMPTZ),
    CAST($window_end AS TIMESTAMPTZ),
    CAST($local_date AS DATE),
    CAST($run_id AS VARCHAR),
    CAST($rejected_at AS TIMESTAMPTZ)
FROM batch_rejected;
