-- Everyone on each list of parties of one table (the lists: message_lists.sql or
-- event_lists.sql), boiled down to: how many they are, the first one at a customer's domain
-- (and which customer), and the first one outside the organisation. The parties query
-- (message_parties.sql or event_parties.sql) gives (list_id, email) for everyone on a list.
-- The record's own account is on its list too; it counts in `parties` (classify_events.sql
-- takes it off) but is never the customer or outside one, its domain being the organisation's.
-- Inputs: `rule_customer_domains`, `rule_org_domains`.
CREATE OR REPLACE TEMP TABLE {name} AS
WITH parties AS (
    {parties}
),
named AS (
    SELECT DISTINCT list_id, lower(email) AS email, split_part(lower(email), '@', 2) AS domain
    FROM parties
    WHERE email <> ''
),
summary AS (
    SELECT
        n.list_id,
        count(*) AS parties,
        min(CASE WHEN cd.customer IS NOT NULL THEN n.email END) AS customer_email,
        arg_min(cd.customer, CASE WHEN cd.customer IS NOT NULL THEN n.email END) AS customer,
        min(CASE WHEN od.domain IS NULL THEN n.email END) AS external_email
    FROM named AS n
    LEFT JOIN rule_customer_domains AS cd ON n.domain = cd.domain
    LEFT JOIN rule_org_domains AS od ON n.domain = od.domain
    GROUP BY n.list_id
)
SELECT l.*, coalesce(s.parties, 0) AS parties, s.customer_email, s.customer, s.external_email
FROM {lists} AS l
LEFT JOIN summary AS s USING (list_id)
