-- Where the lake's Parquet files are now (a data folder beside its catalog may have moved with
-- it, so the path the catalog recorded at creation is not asked).
SELECT data_path FROM ducklake_settings($catalog);
