-- Which version of these schema files built the warehouse: a fingerprint of their text. A
-- writer applies the files again only when it differs, so connecting changes nothing (no
-- catalog snapshot, no conflict with another writer) once the warehouse is up to date.
CREATE TABLE IF NOT EXISTS vis.schema_version (
    fingerprint VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL
);
