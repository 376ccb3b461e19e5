-- reports.missed_calls_by_hour: inbound and missed calls per local day and local hour (0-23).
-- Only hours with at least one inbound call have a row. On the day clocks go back, the
-- repeated hour holds the calls of both passes; on the day they go forward one hour is absent.
-- Definitions: docs/report-definitions.md.
-- Parameters: $first_date, $last_date (local days, inclusive), $tz (the reporting time zone).
SELECT
    local_date,
    CAST(hour(timezone($tz, start_time)) AS INTEGER) AS local_hour,
    CAST(count(*) AS BIGINT) AS inbound_calls,
    CAST(count_if(state = 'MISSED') AS BIGINT) AS missed_calls,
    CAST(count_if(NOT is_final) AS BIGINT) AS live_calls,
    CAST(round(
        count_if(state = 'MISSED') / nullif(count_if(is_final), 0), 4
    ) AS DOUBLE) AS missed_rate
FROM vis.events
WHERE local_date BETWEEN $first_date AND $last_date
    AND direction = 'INBOUND'
GROUP BY local_date, local_hour
ORDER BY local_date, local_hour
