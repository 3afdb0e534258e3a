-- Every message of every mailbox with one category, its reason and its estimated minutes: a
-- view, not a table, as each reader needs a few of its columns and keeping all of them for
-- millions of messages would take gigabytes.
-- Inputs: the lake view `messages`, `message_counterparts` (counterparts.sql), the rule tables.
-- The address lists and labels are left out: what counts of them is in the category.
CREATE OR REPLACE TEMP VIEW classified_messages AS
WITH facts AS (
    SELECT
        m.* EXCLUDE ("to", cc, labels, party_key),
        m.account AS person,
        cp.customer_email,
        cp.customer AS customer,
        cp.external_email,
        cp.has_customer,
        cp.has_external,
        rs.external_is_customer,
        rs.minutes_per_read,
        rs.minutes_per_sent
    FROM messages AS m
    CROSS JOIN rule_settings AS rs
    JOIN message_counterparts AS cp ON m.party_key = cp.list_id
),
categorised AS (
    SELECT
        *,
        CASE
            WHEN auto THEN 'automatic'
            WHEN bulk THEN 'bulk'
            WHEN has_customer THEN 'customer'
            WHEN external_is_customer AND has_external THEN 'customer'
            WHEN direction = 'received' AND self_in = 'cc' THEN 'cc_only'
            ELSE 'internal'
        END AS category,
        CASE
            WHEN auto THEN 'not email work: automatic reply or meeting response'
            WHEN bulk THEN 'newsletter or notification (bulk mail)'
            WHEN customer_email IS NOT NULL THEN
                (CASE WHEN direction = 'sent' THEN 'to ' ELSE 'with ' END) || customer_email || ', customer ' || customer
            WHEN external_is_customer AND external_email IS NOT NULL THEN
                'with ' || external_email || ' (external counts as customer)'
            WHEN direction = 'received' AND self_in = 'cc' THEN 'you were only on cc'
            ELSE 'internal email'
        END AS reason
    FROM facts
)
SELECT
    * EXCLUDE (has_customer, has_external, external_is_customer, minutes_per_read, minutes_per_sent),
    CASE
        WHEN category = 'automatic' THEN 0.0
        WHEN direction = 'sent' THEN minutes_per_sent
        WHEN unread THEN 0.0
        ELSE minutes_per_read
    END AS minutes
FROM categorised
