-- Everyone on each party list of one table (`{lists}`: event_party_lists or
-- message_party_lists, one row per list), boiled down to: how many they are, the first one at
-- a customer's domain (and which customer), and the first one outside the organisation.
-- Every attendee's copy of a meeting and every mailbox's copy of a message carries the same
-- list, so classifying lists, not copies, divides the work by the number of copies; the
-- records find their list by `party_key` (Lake.write_arrow). Should two lists share a 64-bit
-- key (about one chance in a billion for a million lists), one of them stands for both.
-- The record's own account is on its list too; it counts in `parties` (classify_events.sql
-- takes it off) but is never the customer or outside one, its domain being the organisation's.
-- `{addresses}`: the list itself kept as `addresses` (events: classify_events.sql takes the
-- record's own account off), or nothing.
-- Inputs: `rule_customer_domains`, `rule_org_domains`.
CREATE OR REPLACE TEMP TABLE {name} AS
WITH parties AS (
    -- An empty list stays, as one row without an address, so that it counts 0 parties; the
    -- lists are read once (they are found at read time, the costliest part of classifying).
    SELECT party_key AS list_id, addresses, address, split_part(address, '@', 2) AS domain
    FROM (
        SELECT party_key, addresses, unnest(CASE WHEN array_length(addresses) = 0 THEN [NULL] ELSE addresses END) AS address
        FROM {lists}
    ) AS unnested
),
summary AS (
    SELECT
        p.list_id,
        {addresses}
        count(p.address) AS parties,
        min(CASE WHEN cd.customer IS NOT NULL THEN p.address END) AS customer_email,
        arg_min(cd.customer, CASE WHEN cd.customer IS NOT NULL THEN p.address END) AS customer,
        min(CASE WHEN od.domain IS NULL THEN p.address END) AS external_email
    FROM parties AS p
    LEFT JOIN rule_customer_domains AS cd ON p.domain = cd.domain
    LEFT JOIN rule_org_domains AS od ON p.domain = od.domain
    GROUP BY p.list_id
)
SELECT
    *,
    -- What a category needs to know, apart from the addresses only reasons name: a query
    -- that reads categories alone then carries no text through its join with the lists.
    customer_email IS NOT NULL AS has_customer,
    external_email IS NOT NULL AS has_external
FROM summary
