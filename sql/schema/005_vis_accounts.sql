-- The account (getAccount), replaced by id on every sync.
CREATE TABLE IF NOT EXISTS vis.accounts (
    account_id BIGINT PRIMARY KEY,
    name       VARCHAR,
    org        VARCHAR,
    status     VARCHAR,
    ucis       JSON,
    payload    JSON NOT NULL,
    synced_at  TIMESTAMPTZ NOT NULL
);
