-- One person's chat metadata for `timeaudit export-mine`: every live chat message they sent,
-- were mentioned in, or whose thread they started. Parameter: $email, lower case.
WITH marked AS (
    SELECT
        *,
        concat_ws(
            ', ',
            CASE WHEN lower(sender) = $email THEN 'sender' END,
            CASE WHEN list_contains(list_transform(mentions, lambda a: lower(a)), $email) THEN 'mentioned' END,
            CASE WHEN lower(reply_to) = $email THEN 'thread started by you' END
        ) AS relation
    FROM chat
)
SELECT
    relation,
    source,
    account,
    id,
    ts,
    conversation,
    conversation_kind,
    array_to_string(shared_domains, ' ') AS shared_domains,
    sender,
    thread,
    reply_to,
    array_to_string(mentions, '; ') AS mentions,
    reactions,
    array_to_string(tags, ' ') AS tags,
    updated
FROM marked
WHERE relation <> ''
ORDER BY ts, account, id
