-- The figures of each user over local days $first_date..$last_date taken together, busiest
-- user first: the dashboard's user table and the per-user charts. Defined by vis.call_figures.
SELECT
    user_id,
    user_name,
    total_calls,
    answered_calls,
    answer_rate,
    missed_inbound_calls,
    missed_rate,
    talk_seconds_total
FROM vis.call_figures($first_date, $last_date, by_day := false, by_user := true)
ORDER BY total_calls DESC, user_id
