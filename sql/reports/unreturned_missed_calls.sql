-- reports.unreturned_missed_calls: every missed inbound call whose number got no callback.
-- A callback is any outbound call to the same phone_number, or an answered inbound call from
-- it, starting strictly after the missed call and at most $callback_hours later. Calls after
-- $last_date count: the window crosses midnight.
-- waited_hours runs from the missed call to as_of, the latest start_time in the warehouse,
-- so the figures depend on the data only (re-running gives the same table).
-- Missed, answered and the user's name come from vis.calls (docs/report-definitions.md).
-- Parameters: $first_date, $last_date (local days, inclusive), $tz (the reporting time zone),
-- $callback_hours (length of the callback window in hours).
WITH missed AS (
    SELECT
        event_id, local_date, start_time, local_start_time, caller_id, phone_number, user_id,
        user_name
    FROM vis.calls_local($tz)
    WHERE local_date BETWEEN $first_date AND $last_date
        AND is_inbound
        AND is_missed
),
bounds AS (
    SELECT min(start_time) AS first_start, max(start_time) AS last_start FROM missed
),
callbacks AS (
    -- Only calls that can fall in some missed call's window.
    SELECT calls.phone_number, calls.start_time
    FROM vis.calls AS calls, bounds
    WHERE (calls.is_outbound OR calls.is_answered)
        AND calls.start_time > bounds.first_start
        AND calls.start_time <= bounds.last_start + to_hours(CAST($callback_hours AS BIGINT))
),
as_of AS (
    SELECT max(start_time) AS as_of FROM vis.calls
)
SELECT
    CAST(missed.event_id AS BIGINT) AS event_id,
    missed.local_date,
    missed.start_time,
    missed.local_start_time,
    CAST(missed.caller_id AS VARCHAR) AS caller_id,
    CAST(missed.phone_number AS VARCHAR) AS phone_number,
    CAST(missed.user_id AS BIGINT) AS user_id,
    CAST(missed.user_name AS VARCHAR) AS user_name,
    missed.start_time + to_hours(CAST($callback_hours AS BIGINT)) AS callback_deadline,
    -- False while the warehouse does not yet reach the deadline: a callback may still come.
    as_of.as_of >= missed.start_time + to_hours(CAST($callback_hours AS BIGINT)) AS window_closed,
    as_of.as_of,
    CAST(round(
        (epoch_ms(as_of.as_of) - epoch_ms(missed.start_time)) / 3600000.0, 2
    ) AS DOUBLE) AS waited_hours
FROM missed
CROSS JOIN as_of
WHERE NOT EXISTS (
    SELECT 1
    FROM callbacks
    WHERE callbacks.phone_number = missed.phone_number
        AND callbacks.start_time > missed.start_time
        AND callbacks.start_time <= missed.start_time + to_hours(CAST($callback_hours AS BIGINT))
)
ORDER BY missed.start_time, missed.event_id
