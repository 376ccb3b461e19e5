-- The account (getAccount), replaced by id on every sync (a MERGE on the id: one row each).
CREATE TABLE IF NOT EXISTS vis.accounts (
    account_id BIGINT NOT NULL,
    name       VARCHAR,
    org        VARCHAR,
    status     VARCHAR,
    ucis       JSON,
    payload    JSON NOT NULL,
    synced_at  TIMESTAMPTZ NOT NULL
);
