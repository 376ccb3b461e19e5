-- reports.missed_calls_by_user: inbound and missed calls per local day and user (users with
-- inbound calls that day). user_name is NULL when vis.users does not know the user.
-- Every figure is defined once, in vis.call_figures (docs/report-definitions.md).
-- Parameters: $first_date, $last_date (local days, inclusive).
SELECT
    local_date,
    user_id,
    user_name,
    inbound_calls,
    missed_inbound_calls AS missed_calls,
    live_inbound_calls AS live_calls,
    missed_rate
FROM vis.call_figures($first_date, $last_date, by_user := true)
WHERE inbound_calls > 0
ORDER BY local_date, user_id
