-- Local days that hold events but no row of the daily call volume report: the reports of a
-- sync that stopped between its events and its reports. Every report is rebuilt by the same
-- step, so the daily volume stands for them all.
SELECT DISTINCT local_date
FROM vis.events
WHERE local_date NOT IN (SELECT local_date FROM reports.daily_call_volume)
ORDER BY local_date;
