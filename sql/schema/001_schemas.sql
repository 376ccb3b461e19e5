-- Schemas of the warehouse: raw (records as the API sent them), vis (clean tables),
-- reports (derived tables, built by the reporting step).
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS vis;
CREATE SCHEMA IF NOT EXISTS reports;
