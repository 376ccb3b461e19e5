-- reports.unreturned_missed_calls: every missed inbound call whose number got no callback.
-- A callback is any OUTBOUND call to the same phone_number, or an answered (ANSWERED or
-- DETACHED) INBOUND call from it, starting strictly after the missed call and at most
-- $callback_hours later. Calls after $last_date count: the window crosses midnight.
-- waited_hours runs from the missed call to as_of, the latest start_time in the warehouse,
-- so the figures depend on the data only (re-running gives the same table).
-- Definitions: docs/report-definitions.md.
-- Parameters: $first_date, $last_date (local days, inclusive), $tz (the reporting time zone),
-- $callback_hours (length of the callback window in hours).
WITH missed AS (
    SELECT event_id, local_date, start_time, caller_id, phone_number, user_id
    FROM vis.events
    WHERE local_date BETWEEN $first_date AND $last_date
        AND direction = 'INBOUND'
        AND state = 'MISSED'
),
bounds AS (
    SELECT min(start_time) AS first_start, max(start_time) AS last_start FROM missed
),
callbacks AS (
    -- Only calls that can fall in some missed call's window.
    SELECT events.phone_number, events.start_time
    FROM vis.events AS events, bounds
    WHERE (events.direction = 'OUTBOUND' OR events.state IN ('ANSWERED', 'DETACHED'))
        AND events.start_time > bounds.first_start
        AND events.start_time <= bounds.last_start + to_hours(CAST($callback_hours AS BIGINT))
),
as_of AS (
    SELECT max(start_time) AS as_of FROM vis.events
),
names AS (
    SELECT user_id, nullif(trim(concat_ws(' ', first_name, last_name)), '') AS user_name
    FROM vis.users
)
SELECT
    CAST(missed.event_id AS BIGINT) AS event_id,
    missed.local_date,
    missed.start_time,
    CAST(timezone($tz, missed.start_time) AS TIMESTAMP) AS local_start_time,
    CAST(missed.caller_id AS VARCHAR) AS caller_id,
    CAST(missed.phone_number AS VARCHAR) AS phone_number,
    CAST(missed.user_id AS BIGINT) AS user_id,
    CAST(names.user_name AS VARCHAR) AS user_name,
    missed.start_time + to_hours(CAST($callback_hours AS BIGINT)) AS callback_deadline,
    -- False while the warehouse does not yet reach the deadline: a callback may still come.
    as_of.as_of >= missed.start_time + to_hours(CAST($callback_hours AS BIGINT)) AS window_closed,
    as_of.as_of,
    CAST(round(
        (epoch_ms(as_of.as_of) - epoch_ms(missed.start_time)) / 3600000.0, 2
    ) AS DOUBLE) AS waited_hours
FROM missed
CROSS JOIN as_of
LEFT JOIN names USING (user_id)
WHERE NOT EXISTS (
    SELECT 1
    FROM callbacks
    WHERE callbacks.phone_number = missed.phone_number
        AND callbacks.start_time > missed.start_time
        AND callbacks.start_time <= missed.start_time + to_hours(CAST($callback_hours AS BIGINT))
)
ORDER BY missed.start_time, missed.event_id
