-- The latest successful sync ('loaded' or 'settled') of one local date, if any.
SELECT
    local_date, window_start, window_end, api_count, pages, requests, retries, seconds, run_id,
    api_margin_count
FROM vis.sync_windows
WHERE local_date = CAST($local_date AS DATE)
  AND status IN ('loaded', 'settled')
ORDER BY sync_id DESC
LIMIT 1;
