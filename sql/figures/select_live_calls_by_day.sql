-- Calls still live (not yet in a final state) on each local day $first_date..$last_date that
-- has calls: the Dagster metadata of each day's events partition. The figure is
-- vis.call_figures' own (docs/report-definitions.md), never restated here.
SELECT local_date, live_calls
FROM vis.call_figures($first_date, $last_date)
ORDER BY local_date;
