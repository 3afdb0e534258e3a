-- One person's email metadata for `timeaudit export-mine`: every live message of their own
-- mailbox ("own"), and every other mailbox's message naming them as sender, recipient (To)
-- or cc. A colleague's labels, unread flag and self_in describe the colleague's mailbox, so
-- they are shown on the person's own records only. Parameter: $email, lower case.
WITH marked AS (
    SELECT
        *,
        CASE
            WHEN lower(account) = $email THEN 'own'
            ELSE concat_ws(
                ', ',
                CASE WHEN lower(sender) = $email THEN 'sender' END,
                CASE WHEN list_contains(list_transform("to", lambda a: lower(a)), $email) THEN 'recipient' END,
                CASE WHEN list_contains(list_transform(cc, lambda a: lower(a)), $email) THEN 'cc' END
            )
        END AS relation
    FROM messages
)
SELECT
    relation,
    source,
    account,
    id,
    thread_id,
    ts,
    direction,
    sender,
    array_to_string("to", '; ') AS "to",
    array_to_string(cc, '; ') AS cc,
    CASE WHEN relation = 'own' THEN self_in END AS self_in,
    CASE WHEN relation = 'own' THEN array_to_string(labels, ' ') END AS labels,
    CASE WHEN relation = 'own' THEN unread END AS unread,
    bulk,
    auto,
    message_id,
    in_reply_to,
    array_to_string(subject_tags, ' ') AS subject_tags,
    subject,
    updated
FROM marked
WHERE relation <> ''
ORDER BY ts, account, id
