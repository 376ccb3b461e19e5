"""vis-pipeline: call history from the Vonage Integration Suite API into DuckDB, with Dagster."""

__version__ = "0.1.0"
