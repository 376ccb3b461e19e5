-- One row per call event, latest version; a final version is never replaced by a live one.
-- No key, as for raw.events; unique_event_id checks the ids.
CREATE TABLE IF NOT EXISTS vis.events (
    event_id     BIGINT NOT NULL,
    external_id  VARCHAR,
    record_type  VARCHAR NOT NULL,
    account_id   BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    uci_id       BIGINT NOT NULL,
    direction    VARCHAR NOT NULL,
    caller_id    VARCHAR,
    phone_number VARCHAR NOT NULL,
    state        VARCHAR NOT NULL,
    is_final     BOOLEAN NOT NULL,
    start_time   TIMESTAMPTZ NOT NULL,
    answer_time  TIMESTAMPTZ,
    end_time     TIMESTAMPTZ,
    duration_ms  BIGINT,
    sms_data     VARCHAR,
    local_date   DATE NOT NULL,
    synced_at    TIMESTAMPTZ NOT NULL
);
