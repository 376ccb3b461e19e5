-- What one run did to each local date: its latest sync row of that date.
SELECT
    local_date, status, api_count, loaded, rejected, pages, requests, retries, seconds
FROM vis.sync_windows
WHERE run_id = CAST($run_id AS VARCHAR)
QUALIFY row_number() OVER (PARTITION BY local_date ORDER BY sync_id DESC) = 1
ORDER BY local_date;
