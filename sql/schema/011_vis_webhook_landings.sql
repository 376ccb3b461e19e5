-- Events landed by webhook deliveries (drained from the receiver's spool), one row per event id.
-- vis.events holds the event itself, merged exactly as a sync merges it; this table marks it as
-- landed between syncs, so that the next sync of its local day fetches the day again and checks
-- it against the API's count instead of taking it as settled.
CREATE TABLE IF NOT EXISTS vis.webhook_landings (
    event_id          BIGINT NOT NULL,
    local_date        DATE NOT NULL,
    state             VARCHAR NOT NULL,
    is_final          BOOLEAN NOT NULL,
    deliveries        BIGINT NOT NULL,
    first_received_at TIMESTAMPTZ NOT NULL,
    last_received_at  TIMESTAMPTZ NOT NULL,
    landed_at         TIMESTAMPTZ NOT NULL
);
