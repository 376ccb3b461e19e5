-- Users of the batch (relation batch_users), replacing the stored row of the same id.
INSERT OR REPLACE INTO vis.users (
    user_id, account_id, account_label, first_name, last_name, email_address, contact_number,
    status, roles, payload, synced_at
)
SELECT
    user_id,
    account_id,
    account_label,
    first_name,
    last_name,
    email_address,
    contact_number,
    status,
    CAST(roles AS JSON),
    CAST(payload AS JSON),
    CAST($synced_at AS TIMESTAMPTZ)
FROM batch_users;
