-- Names for users the API cannot name: getUser answers only for the token's own user, so the
-- other users of an account are known by id alone. Imported from a CSV by
-- `vis-pipeline users import`, replaced whole on every import; vis.calls prefers the API's name.
-- One row per user_id and a name that is not blank: the import checks both before writing.
CREATE TABLE IF NOT EXISTS vis.user_directory (
    user_id     BIGINT NOT NULL,
    user_name   VARCHAR NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL
);
