-- reports.missed_calls_by_hour: inbound and missed calls per local day and local hour (0-23).
-- Only hours with at least one inbound call have a row. On the day clocks go back, the
-- repeated hour holds the calls of both passes; on the day they go forward one hour is absent.
-- Every figure is defined once, in vis.call_figures (docs/report-definitions.md).
-- Parameters: $first_date, $last_date (local days, inclusive), $tz (the reporting time zone).
SELECT
    local_date,
    local_hour,
    inbound_calls,
    missed_inbound_calls AS missed_calls,
    live_inbound_calls AS live_calls,
    missed_rate
FROM vis.call_figures($first_date, $last_date, tz := $tz, by_hour := true)
WHERE inbound_calls > 0
ORDER BY local_date, local_hour
