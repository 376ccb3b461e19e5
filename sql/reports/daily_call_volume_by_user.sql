-- reports.daily_call_volume_by_user: daily_call_volume split by user, one row per local day,
-- user and direction. user_name is NULL when vis.users does not know the user.
-- Definitions: docs/report-definitions.md.
-- Parameters: $first_date, $last_date (local days, inclusive), $tz (the reporting time zone).
WITH calls AS (
    SELECT
        local_date,
        user_id,
        direction,
        state,
        is_final,
        CAST(hour(timezone($tz, start_time)) AS INTEGER) AS local_hour,
        state IN ('ANSWERED', 'DETACHED') AS answered,
        CASE
            WHEN state IN ('ANSWERED', 'DETACHED') AND answer_time IS NOT NULL
                AND end_time IS NOT NULL
            THEN (epoch_ms(end_time) - epoch_ms(answer_time)) / 1000.0
        END AS talk_seconds,
        CASE
            WHEN state IN ('ANSWERED', 'DETACHED') AND answer_time IS NOT NULL
            THEN (epoch_ms(answer_time) - epoch_ms(start_time)) / 1000.0
        END AS answer_seconds
    FROM vis.events
    WHERE local_date BETWEEN $first_date AND $last_date
),
hourly AS (
    SELECT local_date, user_id, direction, local_hour, count(*) AS calls
    FROM calls
    GROUP BY local_date, user_id, direction, local_hour
),
busiest AS (
    -- The hour with most calls; a tie goes to the earliest hour.
    SELECT local_date, user_id, direction, local_hour AS busiest_hour
    FROM hourly
    QUALIFY row_number() OVER (
        PARTITION BY local_date, user_id, direction ORDER BY calls DESC, local_hour ASC
    ) = 1
),
daily AS (
    SELECT
        local_date,
        user_id,
        direction,
        count(*) AS total_calls,
        count_if(answered) AS answered_calls,
        count_if(state = 'MISSED') AS missed_calls,
        count_if(state = 'REJECTED') AS rejected_calls,
        count_if(state = 'CANCELLED') AS cancelled_calls,
        count_if(NOT is_final) AS live_calls,
        sum(talk_seconds) AS talk_seconds_total,
        avg(talk_seconds) AS talk_seconds_mean,
        quantile_cont(talk_seconds, 0.5) AS talk_seconds_p50,
        quantile_cont(talk_seconds, 0.9) AS talk_seconds_p90,
        avg(answer_seconds) AS answer_seconds_mean,
        quantile_cont(answer_seconds, 0.9) AS answer_seconds_p90
    FROM calls
    GROUP BY local_date, user_id, direction
),
names AS (
    SELECT user_id, nullif(trim(concat_ws(' ', first_name, last_name)), '') AS user_name
    FROM vis.users
)
SELECT
    daily.local_date,
    CAST(daily.user_id AS BIGINT) AS user_id,
    CAST(names.user_name AS VARCHAR) AS user_name,
    CAST(daily.direction AS VARCHAR) AS direction,
    CAST(daily.total_calls AS BIGINT) AS total_calls,
    CAST(daily.answered_calls AS BIGINT) AS answered_calls,
    CAST(daily.missed_calls AS BIGINT) AS missed_calls,
    CAST(daily.rejected_calls AS BIGINT) AS rejected_calls,
    CAST(daily.cancelled_calls AS BIGINT) AS cancelled_calls,
    CAST(daily.live_calls AS BIGINT) AS live_calls,
    -- Over finished calls only: a call still ringing may yet be answered.
    CAST(round(
        daily.answered_calls / nullif(daily.total_calls - daily.live_calls, 0), 4
    ) AS DOUBLE) AS answer_rate,
    CAST(round(coalesce(daily.talk_seconds_total, 0), 3) AS DOUBLE) AS talk_seconds_total,
    CAST(round(daily.talk_seconds_mean, 3) AS DOUBLE) AS talk_seconds_mean,
    CAST(round(daily.talk_seconds_p50, 3) AS DOUBLE) AS talk_seconds_p50,
    CAST(round(daily.talk_seconds_p90, 3) AS DOUBLE) AS talk_seconds_p90,
    CAST(round(daily.answer_seconds_mean, 3) AS DOUBLE) AS answer_seconds_mean,
    CAST(round(daily.answer_seconds_p90, 3) AS DOUBLE) AS answer_seconds_p90,
    busiest.busiest_hour
FROM daily
JOIN busiest USING (local_date, user_id, direction)
LEFT JOIN names USING (user_id)
ORDER BY daily.local_date, daily.user_id, direction
