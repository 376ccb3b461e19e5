-- A call's instants come in order: it is answered at or after its start and at or before its
-- end, it ends at or after its start, and its duration is not negative. A call out of order
-- would give a negative talk time or time to answer. One row per problem of an offending call.
SELECT event_id, state, 'end_time before start_time' AS problem
FROM vis.events
WHERE end_time < start_time
UNION ALL
SELECT event_id, state, 'answer_time before start_time' AS problem
FROM vis.events
WHERE answer_time < start_time
UNION ALL
SELECT event_id, state, 'answer_time after end_time' AS problem
FROM vis.events
WHERE answer_time > end_time
UNION ALL
SELECT event_id, state, 'negative duration' AS problem
FROM vis.events
WHERE duration_ms < 0
