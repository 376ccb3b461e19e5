-- Snapshots older than the retention forgotten (the latest one is always kept): time travel
-- reaches back as far as the retention. Returns the snapshots expired.
SELECT count(*) AS snapshots_expired
FROM ducklake_expire_snapshots($catalog, older_than => $older_than);
