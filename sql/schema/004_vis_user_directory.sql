-- Names for users the API cannot name: getUser answers only for the token's own user, so the
-- other users of an account are known by id alone. Imported from a CSV by
-- `vis-pipeline users import`, replaced whole on every import; vis.calls prefers the API's name.
CREATE TABLE IF NOT EXISTS vis.user_directory (
    user_id     BIGINT PRIMARY KEY,
    user_name   VARCHAR NOT NULL CHECK (trim(user_name) <> ''),
    imported_at TIMESTAMPTZ NOT NULL
);
