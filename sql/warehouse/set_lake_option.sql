-- Record one option in the DuckLake catalog, so every writer uses it.
CALL warehouse.set_option($name, $value);
