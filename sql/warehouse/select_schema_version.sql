-- The fingerprint of the schema files that last built the warehouse.
SELECT fingerprint FROM vis.schema_version ORDER BY applied_at DESC LIMIT 1;
