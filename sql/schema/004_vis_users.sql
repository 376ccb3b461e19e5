-- Users of the account (getUser), replaced by id on every sync (a MERGE on the id: one row each).
CREATE TABLE IF NOT EXISTS vis.users (
    user_id        BIGINT NOT NULL,
    account_id     BIGINT,
    account_label  VARCHAR,
    first_name     VARCHAR,
    last_name      VARCHAR,
    email_address  VARCHAR,
    contact_number VARCHAR,
    status         VARCHAR,
    roles          JSON,
    payload        JSON NOT NULL,
    synced_at      TIMESTAMPTZ NOT NULL
);
