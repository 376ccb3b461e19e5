-- The headline figures of local days $first_date..$last_date taken together: the dashboard's
-- tiles and the report asset's metadata. One row, also for a range without calls.
-- Call figures come from vis.call_figures (the whole range as one group), so they are the
-- reports' definitions; unreturned calls come from the materialised report, whose callback
-- window was chosen when it was built.
WITH range_figures AS (
    SELECT * FROM vis.call_figures($first_date, $last_date, by_day := false)
),
unreturned AS (
    SELECT
        count(*) AS unreturned_calls,
        count_if(NOT window_closed) AS open_unreturned_calls
    FROM reports.unreturned_missed_calls
    WHERE local_date BETWEEN $first_date AND $last_date
)
SELECT
    coalesce(range_figures.total_calls, 0) AS total_calls,
    coalesce(range_figures.inbound_calls, 0) AS inbound_calls,
    coalesce(range_figures.outbound_calls, 0) AS outbound_calls,
    coalesce(range_figures.answered_calls, 0) AS answered_calls,
    coalesce(range_figures.finished_calls, 0) AS finished_calls,
    range_figures.answer_rate,
    coalesce(range_figures.missed_inbound_calls, 0) AS missed_inbound_calls,
    coalesce(range_figures.finished_inbound_calls, 0) AS finished_inbound_calls,
    range_figures.missed_rate,
    coalesce(range_figures.talk_seconds_total, 0) AS talk_seconds_total,
    range_figures.talk_seconds_mean,
    range_figures.answer_seconds_mean,
    CAST(unreturned.unreturned_calls AS BIGINT) AS unreturned_calls,
    CAST(unreturned.open_unreturned_calls AS BIGINT) AS open_unreturned_calls
FROM unreturned
LEFT JOIN range_figures ON true
