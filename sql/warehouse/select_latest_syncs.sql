-- The latest successful sync ('loaded' or 'settled') of each asked local date that has one.
SELECT
    local_date, window_start, window_end, api_count, pages, requests, retries, seconds, run_id,
    api_margin_count
FROM vis.sync_windows
WHERE local_date IN (SELECT UNNEST(CAST($local_dates AS DATE[])))
  AND status IN ('loaded', 'settled')
QUALIFY row_number() OVER (PARTITION BY local_date ORDER BY sync_id DESC) = 1
ORDER BY local_date;
