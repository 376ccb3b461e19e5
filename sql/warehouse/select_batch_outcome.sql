-- What loading the batch (relations batch_events and batch_raw, same ids) will do: ids new to
-- vis.events, live versions that will be ignored because a final version is already stored,
-- ids raw.events already holds, and ids the batch repeats (refused: the tables have no key).
-- When both tables hold none of the ids, the batch is inserted without matching each row.
SELECT
    count(*) FILTER (WHERE stored.event_id IS NULL) AS inserted,
    count(*) FILTER (WHERE stored.is_final AND NOT batch.is_final) AS kept_final,
    (SELECT count(*) FROM batch_raw SEMI JOIN raw.events USING (event_id)) AS stored_raw,
    (
        SELECT count(event_id) - count(DISTINCT event_id) FROM batch_events
    ) + (
        SELECT count(event_id) - count(DISTINCT event_id) FROM batch_raw
    ) AS repeated
FROM batch_events AS batch
LEFT JOIN vis.events AS stored ON stored.event_id = batch.event_id;
