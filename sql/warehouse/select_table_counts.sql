-- Row counts of the warehouse tables, in one row. Each count hashes every column of every
-- row, so the whole table is read: a damaged block fails this query instead of hiding behind
-- row counts kept in the file's metadata.
SELECT
    (SELECT count(hash(e)) FROM vis.events AS e) AS events,
    (SELECT count(*) FROM vis.events WHERE is_final) AS final_events,
    (SELECT count(*) FROM vis.events WHERE NOT is_final) AS live_events,
    (SELECT count(hash(r)) FROM raw.events AS r) AS raw_events,
    (SELECT count(hash(j)) FROM vis.rejected_events AS j) AS rejected_events,
    (SELECT count(hash(u)) FROM vis.users AS u) AS users,
    (SELECT count(hash(a)) FROM vis.accounts AS a) AS accounts,
    (SELECT count(hash(s)) FROM vis.sync_windows AS s) AS window_syncs;
