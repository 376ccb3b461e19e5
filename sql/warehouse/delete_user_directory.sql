-- Empty the user directory before an import replaces it whole.
DELETE FROM vis.user_directory;
