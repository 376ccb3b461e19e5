-- Record the fingerprint of the schema files just applied.
INSERT INTO vis.schema_version (fingerprint, applied_at)
VALUES (CAST($fingerprint AS VARCHAR), CAST($applied_at AS TIMESTAMPTZ));
