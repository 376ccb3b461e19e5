-- No event went back from a final state to a live one: a live row must not carry an end
-- (end_time, duration), its is_final flag must agree with its state, and its raw record must
-- not be final. $final_states is the list of final states. One row per offending event.
SELECT event_id, state, 'live state with end_time or duration' AS problem
FROM vis.events
WHERE NOT list_contains($final_states, state)
  AND (end_time IS NOT NULL OR duration_ms IS NOT NULL)
UNION ALL
SELECT event_id, state, 'is_final disagrees with state' AS problem
FROM vis.events
WHERE is_final IS DISTINCT FROM list_contains($final_states, state)
UNION ALL
SELECT e.event_id, e.state, 'raw record is final, clean row is live' AS problem
FROM vis.events AS e
JOIN raw.events AS r ON r.event_id = e.event_id
WHERE NOT e.is_final
  AND (r.is_final OR list_contains($final_states, r.payload ->> 'state'))
