-- Files no snapshot reads any more (merged, rewritten, or only read by expired snapshots),
-- deleted once they have been unread for the retention: a reader that planned its query on
-- them a moment ago still finds them. Returns the files deleted.
SELECT count(*) AS files_deleted
FROM ducklake_cleanup_old_files($catalog, older_than => $older_than);
