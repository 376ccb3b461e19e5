-- One row of window-sync history.
INSERT INTO vis.sync_windows (
    sync_id, local_date, window_start, window_end, api_count, api_margin_count, loaded,
    rejected, pages, requests, retries, seconds, status, run_id, finished_at
)
VALUES (
    CAST($sync_id AS BIGINT),
    CAST($local_date AS DATE),
    CAST($window_start AS TIMESTAMPTZ),
    CAST($window_end AS TIMESTAMPTZ),
    $api_count,
    CAST($api_margin_count AS BIGINT),
    $loaded,
    $rejected,
    $pages,
    $requests,
    $retries,
    $seconds,
    $status,
    CAST($run_id AS VARCHAR),
    CAST($finished_at AS TIMESTAMPTZ)
);
