"""The default Dagster instance settings, shipped inside the package as
``vis_pipeline.dagster_defaults`` (see pyproject.toml); only ``dagster.yaml`` is packaged.

A regular package rather than a bare folder so that editable installs can import it too.
"""
