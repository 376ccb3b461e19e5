-- The latest version of every event as the API sent it, unknown fields kept.
CREATE TABLE IF NOT EXISTS raw.events (
    event_id      BIGINT PRIMARY KEY,
    payload       JSON NOT NULL,
    state         VARCHAR NOT NULL,
    is_final      BOOLEAN NOT NULL,
    start_time    TIMESTAMPTZ NOT NULL,
    local_date    DATE NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);
