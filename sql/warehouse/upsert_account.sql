-- The account, replacing the stored row of the same id.
INSERT OR REPLACE INTO vis.accounts (account_id, name, org, status, ucis, payload, synced_at)
VALUES (
    $account_id,
    CAST($name AS VARCHAR),
    CAST($org AS VARCHAR),
    CAST($status AS VARCHAR),
    CAST(CAST($ucis AS VARCHAR) AS JSON),
    CAST(CAST($payload AS VARCHAR) AS JSON),
    CAST($synced_at AS TIMESTAMPTZ)
);
