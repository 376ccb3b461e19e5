-- The options the DuckLake catalog already records (set once, when the warehouse is created).
SELECT option_name FROM ducklake_options('warehouse');
