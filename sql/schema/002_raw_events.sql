-- The latest version of every event as the API sent it, unknown fields kept.
-- No PRIMARY KEY: DuckDB keeps a key's index in memory for the whole table, and it cost a third of
-- the load time and half of the file. The loader writes each id once (MERGE on event_id, one
-- writer at a time) and the unique_event_id check proves it after every sync. zstd suits the
-- long JSON payloads.
CREATE TABLE IF NOT EXISTS raw.events (
    event_id      BIGINT NOT NULL,
    payload       JSON NOT NULL USING COMPRESSION zstd,
    state         VARCHAR NOT NULL,
    is_final      BOOLEAN NOT NULL,
    start_time    TIMESTAMPTZ NOT NULL,
    local_date    DATE NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);
