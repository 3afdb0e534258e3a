-- One person's calendar records for `timeaudit export-mine`: every live event of their own
-- account ("own"), and every other account's event naming them as organizer or attendee.
-- A colleague's answer to an invitation (self_response) is the colleague's, so it is shown
-- on the person's own records only. Parameter: $email, lower case.
WITH marked AS (
    SELECT
        *,
        CASE
            WHEN lower(account) = $email THEN 'own'
            ELSE concat_ws(
                ', ',
                CASE WHEN lower(organizer) = $email THEN 'organizer' END,
                CASE WHEN list_contains(list_transform(attendees, lambda a: lower(a.email)), $email) THEN 'attendee' END
            )
        END AS relation
    FROM events
)
SELECT
    relation,
    source,
    account,
    id,
    ical_uid,
    series_id,
    start,
    "end",
    tz,
    all_day,
    status,
    CASE WHEN relation = 'own' THEN self_response END AS self_response,
    transparency,
    event_type,
    organizer,
    array_to_string(
        list_transform(
            attendees,
            lambda a: a.email || ' (' || a.response || CASE WHEN a.optional THEN ', optional' ELSE '' END || ')'
        ),
        '; '
    ) AS attendees,
    attendee_count,
    has_agenda,
    has_conference,
    array_to_string(title_tags, ' ') AS title_tags,
    title,
    updated
FROM marked
WHERE relation <> ''
ORDER BY start, account, id
