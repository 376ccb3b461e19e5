-- Event tables are partitioned by local month: each day's load writes its own files, a day's
-- replacement or merge reads only the files whose local_date range holds that day, and
-- compaction (the warehouse_maintenance job) merges a month's daily files into few.
ALTER TABLE raw.events SET PARTITIONED BY (year(local_date), month(local_date));
ALTER TABLE vis.events SET PARTITIONED BY (year(local_date), month(local_date));
ALTER TABLE vis.rejected_events SET PARTITIONED BY (year(local_date), month(local_date));
