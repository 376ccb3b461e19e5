-- vis.calls_local(tz): vis.calls with the call's start on the local wall clock of the time zone
-- tz. A view cannot take a parameter, and the reporting zone is a setting, so this table macro
-- is the one place local times are computed. local_date stays the one stored at load time (a
-- 23- or 25-hour day is still one date); with tz NULL the local columns are NULL.
CREATE OR REPLACE MACRO vis.calls_local(tz) AS TABLE
SELECT
    calls.*,
    CAST(timezone(tz, calls.start_time) AS TIMESTAMP) AS local_start_time,
    -- On the day clocks go back the repeated hour holds the calls of both passes.
    CAST(hour(timezone(tz, calls.start_time)) AS INTEGER) AS local_hour
FROM vis.calls AS calls
