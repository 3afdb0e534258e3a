-- First and last UTC day holding timed events, and holding messages (NULL when none).
SELECT ev.first_day AS events_first, ev.last_day AS events_last, ms.first_day AS messages_first,
       ms.last_day AS messages_last
FROM (SELECT CAST(min(start) AS DATE) AS first_day, CAST(max("end") AS DATE) AS last_day
      FROM events WHERE NOT all_day) AS ev
CROSS JOIN (SELECT CAST(min(ts) AS DATE) AS first_day, CAST(max(ts) AS DATE) AS last_day FROM messages) AS ms
