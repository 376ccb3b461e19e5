-- Mark the events of a drained batch (relation batch_landings, one row per id) as landed by
-- webhooks. Deliveries add up; the first and last receipt widen; the state follows the version
-- merged, and a final one is never replaced by a live one (as in vis.events).
MERGE INTO vis.webhook_landings AS stored
USING batch_landings AS batch
ON stored.event_id = batch.event_id
WHEN MATCHED THEN UPDATE SET
    local_date = batch.local_date,
    state = CASE WHEN stored.is_final AND NOT batch.is_final THEN stored.state ELSE batch.state END,
    is_final = stored.is_final OR batch.is_final,
    deliveries = stored.deliveries + batch.deliveries,
    first_received_at = least(stored.first_received_at, batch.first_received_at),
    last_received_at = greatest(stored.last_received_at, batch.last_received_at),
    landed_at = CAST($landed_at AS TIMESTAMPTZ)
WHEN NOT MATCHED THEN INSERT (
    event_id, local_date, state, is_final, deliveries, first_received_at, last_received_at,
    landed_at
) VALUES (
    batch.event_id, batch.local_date, batch.state, batch.is_final, batch.deliveries,
    batch.first_received_at, batch.last_received_at, CAST($landed_at AS TIMESTAMPTZ)
);
