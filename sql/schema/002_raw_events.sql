-- The latest version of every event as the API sent it, unknown fields kept.
-- No key: DuckLake tables take none. The loader writes each id once (a guarded MERGE on
-- event_id, in one transaction per day) and the unique_event_id check proves it after every
-- sync. Data files are Parquet, zstd-compressed (the catalog's parquet_compression option).
CREATE TABLE IF NOT EXISTS raw.events (
    event_id      BIGINT NOT NULL,
    payload       JSON NOT NULL,
    state         VARCHAR NOT NULL,
    is_final      BOOLEAN NOT NULL,
    start_time    TIMESTAMPTZ NOT NULL,
    local_date    DATE NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);
