-- What loading the batch (relations batch_events and batch_raw, same ids) will do: ids new to
-- vis.events, live versions that will be ignored because a final version is already stored,
-- ids raw.events already holds, and the rejected rows stored for the window's day
-- $local_date (deleted before the window's own are written, when there are any). When both
-- tables hold none of the ids, the batch is inserted without matching each row. One
-- statement: on a DuckLake each statement first asks the catalog which files to read.
-- Stored rows are looked for only among local dates $first_date..$last_date (the batch's dates
-- with two days each side, which any change of reporting zone stays within): the other days'
-- files are never read, so a window costs the same on the first day as on the thousandth.
SELECT
    count(*) FILTER (WHERE stored.event_id IS NULL) AS inserted,
    count(*) FILTER (WHERE stored.is_final AND NOT batch.is_final) AS kept_final,
    (
        SELECT count(*) FROM batch_raw SEMI JOIN (
            SELECT event_id FROM raw.events
            WHERE local_date BETWEEN $first_date AND $last_date
        ) AS stored_raw USING (event_id)
    ) AS stored_raw,
    (
        SELECT count(*) FROM vis.rejected_events WHERE local_date = $local_date
    ) AS stored_rejected
FROM batch_events AS batch
LEFT JOIN (
    SELECT event_id, is_final FROM vis.events
    WHERE local_date BETWEEN $first_date AND $last_date
) AS stored ON stored.event_id = batch.event_id;
