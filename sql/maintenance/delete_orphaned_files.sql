-- Files in the data path the catalog never recorded (a writer killed before its commit),
-- deleted once older than the retention, so no file of a commit under way is touched.
-- Returns the files deleted.
SELECT count(*) AS files_deleted
FROM ducklake_delete_orphaned_files($catalog, older_than => $older_than);
