-- Everyone on each party list of one table (`{lists}`: event_party_lists or
-- message_party_lists, one row per list), boiled down to: how many they are, the first one at
-- a customer's domain (and which customer), and the first one outside the organisation.
-- Every attendee's copy of a meeting and every mailbox's copy of a message carries the same
-- list, so classifying lists, not copies, divides the work by the number of copies; the
-- records find their list by `party_key` (Lake.write_arrow). Should two lists share a 64-bit
-- key (about one chance in a billion for a million lists), one of them stands for both.
-- The record's own account is on its list too; it counts in `parties` (classify_events.sql
-- takes it off) but is never the customer or outside one, its domain being the organisation's.
-- Inputs: `rule_customer_domains`, `rule_org_domains`.
CREATE OR REPLACE TEMP TABLE {name} AS
WITH parties AS (
    SELECT party_key AS list_id, address, split_part(address, '@', 2) AS domain
    FROM (SELECT party_key, unnest(addresses) AS address FROM {lists}) AS unnested
),
summary AS (
    SELECT
        p.list_id,
        count(*) AS parties,
        min(CASE WHEN cd.customer IS NOT NULL THEN p.address END) AS customer_email,
        arg_min(cd.customer, CASE WHEN cd.customer IS NOT NULL THEN p.address END) AS customer,
        min(CASE WHEN od.domain IS NULL THEN p.address END) AS external_email
    FROM parties AS p
    LEFT JOIN rule_customer_domains AS cd ON p.domain = cd.domain
    LEFT JOIN rule_org_domains AS od ON p.domain = od.domain
    GROUP BY p.list_id
)
SELECT
    l.party_key AS list_id,
    coalesce(s.parties, 0) AS parties,
    s.customer_email,
    s.customer,
    s.external_email,
    -- What a category needs to know, apart from the addresses only reasons name: a query
    -- that reads categories alone then carries no text through its join with the lists.
    s.customer_email IS NOT NULL AS has_customer,
    s.external_email IS NOT NULL AS has_external
FROM {lists} AS l
LEFT JOIN summary AS s ON s.list_id = l.party_key
