-- Every chat message with the customer its conversation is shared with (NULL: internal chat)
-- and whether a customer wrote it. A conversation is customer chat when one of the other
-- organisations it is shared with (Slack Connect, a DM with an outsider: `shared_domains`) is
-- a customer's domain, or, with `external_is_customer`, when it is shared at all.
-- Inputs: the lake view `chat`, `rule_customer_domains`, `rule_settings`.
CREATE OR REPLACE TEMP TABLE classified_chat AS
WITH shared AS (
    SELECT DISTINCT source, account, conversation, shared_domains
    FROM chat
    WHERE array_length(shared_domains) > 0
),
shared_with AS (
    SELECT s.source, s.account, s.conversation, s.shared_domains, min(cd.customer) AS customer
    FROM (SELECT *, unnest(shared_domains) AS domain FROM shared) AS s
    LEFT JOIN rule_customer_domains AS cd ON cd.domain = s.domain
    GROUP BY s.source, s.account, s.conversation, s.shared_domains
)
SELECT
    c.source,
    c.account,
    c.id,
    c.ts,
    c.conversation,
    c.conversation_kind,
    lower(c.sender) AS sender,
    c.bot,
    c.thread,
    c.reply_to,
    coalesce(sw.customer, CASE WHEN rs.external_is_customer AND sw.conversation IS NOT NULL THEN 'external' END)
        AS customer,
    NOT c.bot AND (
        cd.domain IS NOT NULL
        OR (rs.external_is_customer AND list_contains(c.shared_domains, split_part(lower(c.sender), '@', 2)))
    ) AS from_customer
FROM chat AS c
CROSS JOIN rule_settings AS rs
LEFT JOIN (SELECT DISTINCT domain FROM rule_customer_domains) AS cd
  ON cd.domain = split_part(lower(c.sender), '@', 2)
LEFT JOIN shared_with AS sw
  ON sw.source = c.source AND sw.account = c.account AND sw.conversation = c.conversation
 AND sw.shared_domains = c.shared_domains
