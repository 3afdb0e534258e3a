-- Every event of every calendar with exactly one category and the reason for it.
-- Inputs: the lake view `events`, `event_counterparts` (counterparts.sql, with each list's addresses),
-- the rule tables.
-- The attendee list itself is left out: what counts of it is `others` and `attendee_count`.
CREATE OR REPLACE TEMP TABLE classified_events AS
WITH tags AS (
    SELECT source, account, id, unnest(title_tags) AS tag FROM events
),
admin_tag AS (
    SELECT t.source, t.account, t.id, min(t.tag) AS keyword, arg_min(ak.kind, t.tag) AS kind
    FROM tags AS t JOIN rule_admin_keywords AS ak ON t.tag = ak.keyword
    GROUP BY t.source, t.account, t.id
),
committee_tag AS (
    SELECT t.source, t.account, t.id, min(t.tag) AS keyword
    FROM tags AS t JOIN rule_committee_keywords AS ck ON t.tag = ck.keyword
    GROUP BY t.source, t.account, t.id
),
facts AS (
    SELECT
        e.*,
        e.account AS person,
        (epoch(e."end") - epoch(e.start)) / 60.0 AS minutes,
        cp.parties - CASE WHEN list_contains(cp.addresses, lower(e.account)) THEN 1 ELSE 0 END AS others,
        cp.customer_email,
        cp.customer AS customer,
        cp.external_email,
        adm.keyword AS admin_keyword,
        adm.kind AS admin_kind,
        com.keyword AS committee_keyword,
        rs.external_is_customer,
        rs.max_event_minutes
    FROM events AS e
    CROSS JOIN rule_settings AS rs
    JOIN event_counterparts AS cp ON e.party_key = cp.list_id
    LEFT JOIN admin_tag AS adm USING (source, account, id)
    LEFT JOIN committee_tag AS com USING (source, account, id)
),
-- One rule list: the first rule that holds gives both the category and its reason.
verdicts AS (
    SELECT
        *,
        CASE
            WHEN status = 'cancelled' THEN {'category': 'excluded', 'reason': 'not counted: the event was cancelled'}
            WHEN self_response = 'declined' THEN {'category': 'excluded', 'reason': 'not counted: you declined'}
            WHEN event_type = 'outOfOffice' THEN
                {'category': 'out_of_office', 'reason': 'out of office: reduces working hours'}
            WHEN all_day THEN {'category': 'excluded', 'reason': 'not counted: all-day event'}
            WHEN event_type = 'workingLocation' THEN
                {'category': 'excluded', 'reason': 'not counted: working-location marker'}
            WHEN transparency = 'transparent' THEN {'category': 'excluded', 'reason': 'not counted: shown as free'}
            WHEN minutes > max_event_minutes THEN {
                'category': 'excluded',
                'reason': 'not counted: longer than ' || CAST(round(max_event_minutes / 60.0, 1) AS VARCHAR) || ' hours'
            }
            WHEN minutes <= 0 THEN {'category': 'excluded', 'reason': 'not counted: no duration'}
            WHEN self_response = 'tentative' AND organizer <> account THEN
                {'category': 'tentative', 'reason': 'tentative: you answered maybe'}
            WHEN self_response = 'needsAction' AND organizer <> account THEN
                {'category': 'tentative', 'reason': 'tentative: you have not answered'}
            WHEN customer_email IS NOT NULL THEN
                {'category': 'customer', 'reason': 'attendee ' || customer_email || ' is customer ' || customer}
            WHEN external_is_customer AND external_email IS NOT NULL THEN {
                'category': 'customer',
                'reason': 'attendee ' || external_email || ' is external (external counts as customer)'
            }
            WHEN event_type = 'focusTime' THEN {'category': 'focus', 'reason': 'focus time block'}
            WHEN admin_keyword IS NOT NULL THEN {
                'category': 'admin',
                'reason': 'title mentions ''' || admin_keyword || ''' (' || admin_kind || ')'
            }
            WHEN others = 1 THEN {'category': 'internal', 'reason': 'internal meeting with 1 other person'}
            WHEN others > 1 THEN {
                'category': 'internal',
                'reason': 'internal meeting with ' || CAST(others AS VARCHAR) || ' other people'
            }
            ELSE {'category': 'focus', 'reason': 'solo block with no other attendees'}
        END AS verdict
    FROM facts
)
SELECT
    * EXCLUDE (attendees, party_key, external_is_customer, max_event_minutes, verdict),
    verdict.category AS category,
    verdict.reason AS reason
FROM verdicts
