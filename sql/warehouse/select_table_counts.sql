-- Row counts of the warehouse tables, in one row.
SELECT
    (SELECT count(*) FROM vis.events) AS events,
    (SELECT count(*) FROM vis.events WHERE is_final) AS final_events,
    (SELECT count(*) FROM vis.events WHERE NOT is_final) AS live_events,
    (SELECT count(*) FROM raw.events) AS raw_events,
    (SELECT count(*) FROM vis.rejected_events) AS rejected_events,
    (SELECT count(*) FROM vis.users) AS users,
    (SELECT count(*) FROM vis.accounts) AS accounts,
    (SELECT count(*) FROM vis.sync_windows) AS window_syncs;
