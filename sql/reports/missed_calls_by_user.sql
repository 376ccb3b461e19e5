-- reports.missed_calls_by_user: inbound and missed calls per local day and user.
-- user_name is NULL when vis.users does not know the user.
-- Definitions: docs/report-definitions.md.
-- Parameters: $first_date, $last_date (local days, inclusive).
WITH names AS (
    SELECT user_id, nullif(trim(concat_ws(' ', first_name, last_name)), '') AS user_name
    FROM vis.users
)
SELECT
    events.local_date,
    CAST(events.user_id AS BIGINT) AS user_id,
    CAST(any_value(names.user_name) AS VARCHAR) AS user_name,
    CAST(count(*) AS BIGINT) AS inbound_calls,
    CAST(count_if(events.state = 'MISSED') AS BIGINT) AS missed_calls,
    CAST(count_if(NOT events.is_final) AS BIGINT) AS live_calls,
    CAST(round(
        count_if(events.state = 'MISSED') / nullif(count_if(events.is_final), 0), 4
    ) AS DOUBLE) AS missed_rate
FROM vis.events AS events
LEFT JOIN names USING (user_id)
WHERE events.local_date BETWEEN $first_date AND $last_date
    AND events.direction = 'INBOUND'
GROUP BY events.local_date, events.user_id
ORDER BY events.local_date, events.user_id
