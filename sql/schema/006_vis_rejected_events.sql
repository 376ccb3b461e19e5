-- Records of a window that are not valid events, with the reason; replaced when the window
-- is loaded again.
CREATE TABLE IF NOT EXISTS vis.rejected_events (
    event_id     BIGINT,
    reason       VARCHAR NOT NULL,
    payload      JSON NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end   TIMESTAMPTZ NOT NULL,
    local_date   DATE NOT NULL,
    run_id       VARCHAR,
    rejected_at  TIMESTAMPTZ NOT NULL
);
