-- Each call carries the fields its state implies, which NOT NULL constraints cannot say: a
-- call in state ANSWERED has an answer_time (talk time and time to answer need it), a call
-- that ended without being answered has none, and a final call has its end (end_time and
-- duration). A DETACHED call may lack its answer_time: the reports then leave it out of talk
-- time and time to answer. One row per problem of an offending call.
SELECT event_id, state, 'ANSWERED call without answer_time' AS problem
FROM vis.calls
WHERE state = 'ANSWERED' AND answer_time IS NULL
UNION ALL
SELECT event_id, state, 'call never answered has an answer_time' AS problem
FROM vis.calls
WHERE (is_missed OR is_rejected OR is_cancelled) AND answer_time IS NOT NULL
UNION ALL
SELECT event_id, state, 'final call without end_time' AS problem
FROM vis.calls
WHERE is_finished AND end_time IS NULL
UNION ALL
SELECT event_id, state, 'final call without duration' AS problem
FROM vis.events
WHERE is_final AND duration_ms IS NULL
