-- What an upsert of the batch (relation batch_events) will do: ids new to the warehouse, and
-- live versions that will be ignored because a final version is already stored.
SELECT
    count(*) FILTER (WHERE stored.event_id IS NULL) AS inserted,
    count(*) FILTER (WHERE stored.is_final AND NOT batch.is_final) AS kept_final
FROM batch_events AS batch
LEFT JOIN vis.events AS stored ON stored.event_id = batch.event_id;
