-- History of window syncs, append-only. sync_id orders the rows: the writer's clock in
-- nanoseconds, strictly increasing within a process (DuckLake has no sequences).
-- api_count is what the API holds inside the window; api_margin_count what its count endpoint
-- answered for the range actually queried (the window plus a margin each side).
CREATE TABLE IF NOT EXISTS vis.sync_windows (
    sync_id          BIGINT NOT NULL,
    local_date       DATE NOT NULL,
    window_start     TIMESTAMPTZ NOT NULL,
    window_end       TIMESTAMPTZ NOT NULL,
    api_count        BIGINT NOT NULL,
    api_margin_count BIGINT,
    loaded           BIGINT NOT NULL,
    rejected         BIGINT NOT NULL,
    pages            BIGINT NOT NULL,
    requests         BIGINT NOT NULL,
    retries          BIGINT NOT NULL,
    seconds          DOUBLE NOT NULL,
    status           VARCHAR NOT NULL, -- loaded, settled or failed
    run_id           VARCHAR,
    finished_at      TIMESTAMPTZ NOT NULL
);
