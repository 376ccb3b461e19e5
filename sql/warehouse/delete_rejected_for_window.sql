-- Rejected rows of one window (a local day), before that window's rejected rows are written again.
DELETE FROM vis.rejected_events
WHERE local_date = CAST($local_date AS DATE);
