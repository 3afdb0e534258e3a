-- Each distinct party list of some messages once, under its key: everyone on it, sender, to
-- and cc, as lower-case addresses, each once. Readers find them at read time over one snapshot
-- (Lake.connect), so counterparts.sql classifies lists, not copies.
SELECT
    party_key,
    list_distinct(list_filter(list_transform(list_concat([sender], "to", cc), lambda x: lower(x)), lambda x: x <> ''))
        AS addresses
FROM (
    SELECT party_key, any_value(sender) AS sender, any_value("to") AS "to", any_value(cc) AS cc
    FROM {raw}
    GROUP BY party_key
) AS lists
