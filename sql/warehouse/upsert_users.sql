-- Users of the batch (relation batch_users, one row per id), replacing the stored row of the
-- same id.
MERGE INTO vis.users AS stored
USING (
    SELECT
        user_id,
        account_id,
        account_label,
        first_name,
        last_name,
        email_address,
        contact_number,
        status,
        CAST(roles AS JSON) AS roles,
        CAST(payload AS JSON) AS payload,
        CAST($synced_at AS TIMESTAMPTZ) AS synced_at
    FROM batch_users
) AS batch
ON stored.user_id = batch.user_id
WHEN MATCHED THEN UPDATE SET
    account_id = batch.account_id,
    account_label = batch.account_label,
    first_name = batch.first_name,
    last_name = batch.last_name,
    email_address = batch.email_address,
    contact_number = batch.contact_number,
    status = batch.status,
    roles = batch.roles,
    payload = batch.payload,
    synced_at = batch.synced_at
WHEN NOT MATCHED THEN INSERT (
    user_id, account_id, account_label, first_name, last_name, email_address, contact_number,
    status, roles, payload, synced_at
) VALUES (
    batch.user_id, batch.account_id, batch.account_label, batch.first_name, batch.last_name,
    batch.email_address, batch.contact_number, batch.status, batch.roles, batch.payload,
    batch.synced_at
);
