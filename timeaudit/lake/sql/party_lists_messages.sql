-- Each distinct party list of some messages once, under its key: everyone on it, sender, to
-- and cc, as lower-case addresses, each once. The lake keeps this beside every batch file
-- (Lake.write_arrow), so readers never read the address lists of every mailbox's copy of a
-- message (counterparts.sql).
SELECT
    party_key,
    list_distinct(list_filter(list_transform(list_concat([sender], "to", cc), lambda x: lower(x)), lambda x: x <> ''))
        AS addresses
FROM (
    SELECT party_key, any_value(sender) AS sender, any_value("to") AS "to", any_value(cc) AS cc
    FROM {raw}
    GROUP BY party_key
) AS lists
