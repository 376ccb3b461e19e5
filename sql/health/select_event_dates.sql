-- Local days that hold events.
SELECT DISTINCT local_date
FROM vis.events
ORDER BY local_date;
