-- vis.call_figures(first_date, last_date, ...): the figures of the calls started on local days
-- first_date..last_date, one row per group. Every aggregate figure of the reports, the
-- dashboard and the Dagster metadata is defined here once (docs/report-definitions.md).
-- Groups: by local day unless by_day := false, and by direction, user or local hour when asked
-- (by_direction, by_user, by_hour := true). A dimension not asked for is NULL in every row, so
-- it splits nothing; by_day := false gives the whole range as one row (no row without calls).
-- tz is the reporting time zone; it is needed only for local hours (by_hour, busiest_hour),
-- which are NULL without it (tz empty, the default, or NULL). The default is '' rather than
-- NULL: DuckLake stores a macro's NULL default as the text 'NULL'.
CREATE OR REPLACE MACRO vis.call_figures(
    first_date,
    last_date,
    tz := '',
    by_day := true,
    by_direction := false,
    by_user := false,
    by_hour := false
) AS TABLE
WITH calls AS (
    SELECT
        CASE WHEN by_day THEN local_date END AS local_date,
        CASE WHEN by_direction THEN direction END AS direction,
        CASE WHEN by_user THEN user_id END AS user_id,
        CASE WHEN by_user THEN user_name END AS user_name,
        CASE WHEN by_hour THEN local_hour END AS local_hour,
        local_hour AS start_hour,
        is_inbound,
        is_outbound,
        is_finished,
        is_live,
        is_answered,
        is_missed,
        is_rejected,
        is_cancelled,
        talk_seconds,
        wait_seconds
    FROM vis.calls_local(nullif(tz, ''))
    WHERE local_date BETWEEN first_date AND last_date
),
hour_counts AS (
    -- How many calls of each group started in each local hour.
    SELECT local_date, direction, user_id, local_hour, start_hour, count(*) AS calls_that_hour
    FROM calls
    GROUP BY local_date, direction, user_id, local_hour, start_hour
),
busiest AS (
    -- The hour with most calls of each group; a tie goes to the earliest hour (hours are 0-23,
    -- so calls * 100 - hour orders by calls, then by earliest hour). Without local hours
    -- (no tz) every key is NULL, which arg_max skips: the busiest hour is NULL.
    -- Aggregates rather than window functions: DuckDB 1.5 sorts every call for a window.
    SELECT
        local_date,
        direction,
        user_id,
        local_hour,
        arg_max(start_hour, calls_that_hour * 100 - start_hour) AS busiest_hour
    FROM hour_counts
    GROUP BY local_date, direction, user_id, local_hour
),
figures AS (
    SELECT
        local_date,
        direction,
        user_id,
        local_hour,
        any_value(user_name) AS user_name,
        count(*) AS total_calls,
        count_if(is_inbound) AS inbound_calls,
        count_if(is_outbound) AS outbound_calls,
        count_if(is_answered) AS answered_calls,
        count_if(is_missed) AS missed_calls,
        count_if(is_missed AND is_inbound) AS missed_inbound_calls,
        count_if(is_rejected) AS rejected_calls,
        count_if(is_cancelled) AS cancelled_calls,
        count_if(is_live) AS live_calls,
        count_if(is_live AND is_inbound) AS live_inbound_calls,
        count_if(is_finished) AS finished_calls,
        count_if(is_finished AND is_inbound) AS finished_inbound_calls,
        sum(talk_seconds) AS talk_seconds_total,
        avg(talk_seconds) AS talk_seconds_mean,
        quantile_cont(talk_seconds, 0.5) AS talk_seconds_p50,
        quantile_cont(talk_seconds, 0.9) AS talk_seconds_p90,
        avg(wait_seconds) AS answer_seconds_mean,
        quantile_cont(wait_seconds, 0.9) AS answer_seconds_p90
    FROM calls
    GROUP BY local_date, direction, user_id, local_hour
)
SELECT
    figures.local_date,
    CAST(figures.direction AS VARCHAR) AS direction,
    CAST(figures.user_id AS BIGINT) AS user_id,
    CAST(user_name AS VARCHAR) AS user_name,
    CAST(figures.local_hour AS INTEGER) AS local_hour,
    CAST(total_calls AS BIGINT) AS total_calls,
    CAST(inbound_calls AS BIGINT) AS inbound_calls,
    CAST(outbound_calls AS BIGINT) AS outbound_calls,
    CAST(answered_calls AS BIGINT) AS answered_calls,
    CAST(missed_calls AS BIGINT) AS missed_calls,
    CAST(missed_inbound_calls AS BIGINT) AS missed_inbound_calls,
    CAST(rejected_calls AS BIGINT) AS rejected_calls,
    CAST(cancelled_calls AS BIGINT) AS cancelled_calls,
    CAST(live_calls AS BIGINT) AS live_calls,
    CAST(live_inbound_calls AS BIGINT) AS live_inbound_calls,
    CAST(finished_calls AS BIGINT) AS finished_calls,
    CAST(finished_inbound_calls AS BIGINT) AS finished_inbound_calls,
    -- Rates are over finished calls only: a call still ringing may yet be answered.
    CAST(round(answered_calls / nullif(finished_calls, 0), 4) AS DOUBLE) AS answer_rate,
    CAST(round(
        missed_inbound_calls / nullif(finished_inbound_calls, 0), 4
    ) AS DOUBLE) AS missed_rate,
    CAST(round(coalesce(talk_seconds_total, 0), 3) AS DOUBLE) AS talk_seconds_total,
    CAST(round(talk_seconds_mean, 3) AS DOUBLE) AS talk_seconds_mean,
    CAST(round(talk_seconds_p50, 3) AS DOUBLE) AS talk_seconds_p50,
    CAST(round(talk_seconds_p90, 3) AS DOUBLE) AS talk_seconds_p90,
    CAST(round(answer_seconds_mean, 3) AS DOUBLE) AS answer_seconds_mean,
    CAST(round(answer_seconds_p90, 3) AS DOUBLE) AS answer_seconds_p90,
    CAST(busiest.busiest_hour AS INTEGER) AS busiest_hour
FROM figures
-- A dimension not asked for is NULL on both sides: NULL matches NULL here.
LEFT JOIN busiest
    ON figures.local_date IS NOT DISTINCT FROM busiest.local_date
    AND figures.direction IS NOT DISTINCT FROM busiest.direction
    AND figures.user_id IS NOT DISTINCT FROM busiest.user_id
    AND figures.local_hour IS NOT DISTINCT FROM busiest.local_hour
