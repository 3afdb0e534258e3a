-- Each distinct party list of some events once, under its key: everyone on it, the organizer
-- and the attendees, as lower-case addresses, each once. Readers find them at read time over
-- one snapshot (Lake.connect), so counterparts.sql classifies lists, not copies.
SELECT
    party_key,
    list_distinct(list_filter(list_transform(list_concat([organizer], emails), lambda x: lower(x)), lambda x: x <> ''))
        AS addresses
FROM (
    SELECT party_key, any_value(organizer) AS organizer, any_value(list_transform(attendees, lambda a: a.email)) AS emails
    FROM {raw}
    GROUP BY party_key
) AS lists
