-- Each person's events placed in their local week, with cost and waste flags.
-- Inputs: `classified_events`, `person_days`, `rule_settings`, `roster_costs`.
CREATE OR REPLACE TEMP VIEW person_meetings AS
SELECT
    ce.person,
    pd.week,
    strftime(timezone(pd.tz, ce.start), '%a %d %b %H:%M') AS start_local,
    ce.start,
    ce."end",
    ce.id,
    CASE WHEN ce.series_id <> '' THEN ce.series_id WHEN ce.ical_uid <> '' THEN ce.ical_uid ELSE ce.id END
        AS series_key,
    ce.series_id <> '' AS recurring,
    ce.minutes,
    CASE WHEN array_length(ce.title_tags) > 0 THEN array_to_string(ce.title_tags, ', ')
         ELSE coalesce(ce.title, '(untitled)') END AS title,
    ce.attendee_count,
    ce.others,
    ce.minutes / 60.0 * greatest(ce.attendee_count, 1) AS person_hours,
    ce.minutes / 60.0 * coalesce(rc.hourly_cost, rs.default_hourly_cost) AS own_cost,
    ce.category,
    ce.reason,
    ce.series_id,
    ce.has_agenda,
    ce.admin_kind,
    ce.committee_keyword,
    ce.external_email,
    ce.customer,
    concat_ws('; ',
        CASE WHEN NOT ce.has_agenda THEN 'no agenda' END,
        CASE WHEN ce.attendee_count >= rs.large_meeting THEN 'large' END,
        CASE WHEN ce.minutes > rs.long_meeting_minutes THEN 'long' END,
        CASE WHEN ce.series_id <> '' THEN 'recurring' END,
        CASE WHEN ce.committee_keyword IS NOT NULL THEN 'committee' END
    ) AS flags
FROM classified_events AS ce
CROSS JOIN rule_settings AS rs
LEFT JOIN roster_costs AS rc ON rc.person = ce.person
JOIN person_days AS pd
    ON pd.person = ce.person AND ce.start >= pd.day_start AND ce.start < pd.day_end
