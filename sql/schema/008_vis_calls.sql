-- vis.calls: one row per call (the latest version in vis.events) with the derived columns
-- every report reads. Each per-call definition of docs/report-definitions.md is written here
-- once (answered, missed, live, talk time, time to answer, the user's name); reports, figures
-- and checks select these columns and never restate them.
-- A view holds no data, so it is replaced whenever the schema files change (see
-- vis.schema_version): a warehouse created by an older version reads today's definitions.
CREATE OR REPLACE VIEW vis.calls AS
WITH outcomes AS (
    SELECT
        events.*,
        events.direction = 'INBOUND' AS is_inbound,
        events.direction = 'OUTBOUND' AS is_outbound,
        events.is_final AS is_finished,
        NOT events.is_final AS is_live,
        -- DETACHED: transferred after being answered.
        events.state IN ('ANSWERED', 'DETACHED') AS is_answered,
        events.state = 'MISSED' AS is_missed,
        events.state = 'REJECTED' AS is_rejected,
        events.state = 'CANCELLED' AS is_cancelled,
        -- The API's own name first; the imported directory for users the API cannot name.
        coalesce(
            nullif(trim(concat_ws(' ', users.first_name, users.last_name)), ''),
            directory.user_name
        ) AS user_name
    FROM vis.events AS events
    LEFT JOIN vis.users AS users USING (user_id)
    LEFT JOIN vis.user_directory AS directory USING (user_id)
)
SELECT
    event_id,
    local_date,
    start_time,
    answer_time,
    end_time,
    direction,
    state,
    user_id,
    user_name,
    phone_number,
    caller_id,
    is_inbound,
    is_outbound,
    is_finished,
    is_live,
    is_answered,
    is_missed,
    is_rejected,
    is_cancelled,
    -- Epoch milliseconds: the API's precision, so the seconds are exact to 3 decimals.
    CASE
        WHEN is_answered AND answer_time IS NOT NULL AND end_time IS NOT NULL
        THEN (epoch_ms(end_time) - epoch_ms(answer_time)) / 1000.0
    END AS talk_seconds,
    CASE
        WHEN is_answered AND answer_time IS NOT NULL
        THEN (epoch_ms(answer_time) - epoch_ms(start_time)) / 1000.0
    END AS wait_seconds
FROM outcomes
