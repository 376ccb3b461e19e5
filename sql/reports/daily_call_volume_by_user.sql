-- reports.daily_call_volume_by_user: daily_call_volume split by user, one row per local day,
-- user and direction. user_name is NULL when vis.users does not know the user.
-- Every figure is defined once, in vis.call_figures (docs/report-definitions.md).
-- Parameters: $first_date, $last_date (local days, inclusive), $tz (the reporting time zone).
SELECT
    local_date,
    user_id,
    user_name,
    direction,
    total_calls,
    answered_calls,
    missed_calls,
    rejected_calls,
    cancelled_calls,
    live_calls,
    answer_rate,
    talk_seconds_total,
    talk_seconds_mean,
    talk_seconds_p50,
    talk_seconds_p90,
    answer_seconds_mean,
    answer_seconds_p90,
    busiest_hour
FROM vis.call_figures(
    $first_date, $last_date, tz := $tz, by_direction := true, by_user := true
)
ORDER BY local_date, user_id, direction
