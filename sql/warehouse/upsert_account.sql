-- The account, replacing the stored row of the same id.
MERGE INTO vis.accounts AS stored
USING (
    SELECT
        CAST($account_id AS BIGINT) AS account_id,
        CAST($name AS VARCHAR) AS name,
        CAST($org AS VARCHAR) AS org,
        CAST($status AS VARCHAR) AS status,
        CAST(CAST($ucis AS VARCHAR) AS JSON) AS ucis,
        CAST(CAST($payload AS VARCHAR) AS JSON) AS payload,
        CAST($synced_at AS TIMESTAMPTZ) AS synced_at
) AS account
ON stored.account_id = account.account_id
WHEN MATCHED THEN UPDATE SET
    name = account.name,
    org = account.org,
    status = account.status,
    ucis = account.ucis,
    payload = account.payload,
    synced_at = account.synced_at
WHEN NOT MATCHED THEN INSERT (account_id, name, org, status, ucis, payload, synced_at)
VALUES (
    account.account_id, account.name, account.org, account.status, account.ucis,
    account.payload, account.synced_at
);
