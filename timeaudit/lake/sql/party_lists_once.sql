-- The party lists of several batches with each list once: a list held by several batches
-- (every week's copy of a standing meeting) is taken once.
SELECT party_key, any_value(addresses) AS addresses
FROM ({lists}) AS lists
GROUP BY party_key
