"""The project's SQL, shipped inside the package as ``vis_pipeline.sql`` (see pyproject.toml).

A regular package rather than a bare folder so that editable installs can import it too;
``vis_pipeline.sqlfiles`` loads the files by name.
"""
