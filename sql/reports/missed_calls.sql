-- reports.missed_calls: inbound calls and how many were missed, one row per local day with
-- inbound calls. Every figure is defined once, in vis.call_figures
-- (docs/report-definitions.md); here missed and live calls are the inbound ones.
-- Parameters: $first_date, $last_date (local days, inclusive).
SELECT
    local_date,
    inbound_calls,
    missed_inbound_calls AS missed_calls,
    live_inbound_calls AS live_calls,
    missed_rate
FROM vis.call_figures($first_date, $last_date)
WHERE inbound_calls > 0
ORDER BY local_date
