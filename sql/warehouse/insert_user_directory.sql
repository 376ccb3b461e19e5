-- The imported directory (relation batch_directory: user_id, user_name).
INSERT INTO vis.user_directory (user_id, user_name, imported_at)
SELECT user_id, user_name, CAST($imported_at AS TIMESTAMPTZ)
FROM batch_directory;
