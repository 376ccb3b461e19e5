-- Events the warehouse holds: an import into a warehouse holding some needs to be told so.
SELECT count(*) FROM vis.events
