-- Each person's events placed in their local week, with cost and waste flags.
-- Inputs: `classified_events`, `person_days`, `rule_settings`.
CREATE OR REPLACE TEMP VIEW person_meetings AS
SELECT
    ce.person,
    pd.week,
    strftime(timezone(pd.tz, ce.start), '%a %d %b %H:%M') AS start_local,
    ce.start,
    ce.minutes,
    CASE WHEN len(ce.title_tags) > 0 THEN array_to_string(ce.title_tags, ', ')
         ELSE coalesce(ce.title, '(untitled)') END AS title,
    ce.attendee_count,
    ce.minutes / 60.0 * greatest(ce.attendee_count, 1) AS person_hours,
    ce.category,
    ce.reason,
    ce.series_id,
    concat_ws('; ',
        CASE WHEN NOT ce.has_agenda THEN 'no agenda' END,
        CASE WHEN ce.attendee_count >= rs.large_meeting THEN 'large' END,
        CASE WHEN ce.minutes > rs.long_meeting_minutes THEN 'long' END,
        CASE WHEN ce.series_id <> '' THEN 'recurring' END,
        CASE WHEN ce.committee_keyword IS NOT NULL THEN 'committee' END
    ) AS flags
FROM classified_events AS ce
CROSS JOIN rule_settings AS rs
JOIN person_days AS pd
    ON pd.person = ce.person AND ce.start >= pd.day_start AND ce.start < pd.day_end
