-- The state vis.events holds for each of the given event ids (those it holds).
SELECT event_id, state
FROM vis.events
WHERE event_id IN (SELECT UNNEST(CAST($event_ids AS BIGINT[])));
