-- reports.missed_calls: inbound calls and how many were missed, one row per local day.
-- missed_rate is over finished inbound calls (a call still ringing may yet be answered).
-- Definitions: docs/report-definitions.md.
-- Parameters: $first_date, $last_date (local days, inclusive).
SELECT
    local_date,
    CAST(count(*) AS BIGINT) AS inbound_calls,
    CAST(count_if(state = 'MISSED') AS BIGINT) AS missed_calls,
    CAST(count_if(NOT is_final) AS BIGINT) AS live_calls,
    CAST(round(
        count_if(state = 'MISSED') / nullif(count_if(is_final), 0), 4
    ) AS DOUBLE) AS missed_rate
FROM vis.events
WHERE local_date BETWEEN $first_date AND $last_date
    AND direction = 'INBOUND'
GROUP BY local_date
ORDER BY local_date
