-- Everyone on each record of one table other than its own account, boiled down to: how many
-- they are, the first one at a customer's domain (and which customer), and the first one
-- outside the organisation. The parties query (event_parties.sql or message_parties.sql)
-- gives (source, account, id, email) for everyone named on a record.
-- Inputs: `rule_customer_domains`, `rule_org_domains`.
CREATE OR REPLACE TEMP TABLE {name} AS
WITH parties AS (
    {parties}
),
other_parties AS (
    SELECT DISTINCT source, account, id, lower(email) AS email, split_part(lower(email), '@', 2) AS domain
    FROM parties
    WHERE lower(email) <> account AND email <> ''
)
SELECT
    op.source,
    op.account,
    op.id,
    count(*) AS others,
    min(CASE WHEN cd.customer IS NOT NULL THEN op.email END) AS customer_email,
    arg_min(cd.customer, CASE WHEN cd.customer IS NOT NULL THEN op.email END) AS customer,
    min(CASE WHEN od.domain IS NULL THEN op.email END) AS external_email
FROM other_parties AS op
LEFT JOIN rule_customer_domains AS cd ON op.domain = cd.domain
LEFT JOIN rule_org_domains AS od ON op.domain = od.domain
GROUP BY op.source, op.account, op.id
