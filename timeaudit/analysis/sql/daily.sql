-- One row per person and local day: hours per category, email and capacity.
-- weekly.sql sums these rows into person-weeks.
--
-- Inputs: `person_days` (one row per person and local calendar day, with the day's and the
-- working hours' bounds already in UTC, built by metrics.py), `classified_events`,
-- `classified_messages`, `rule_settings`. People go by their number (`pid`) inside: sorting
-- and joining on a number costs much less than on an address.
--
-- Calendar time is resolved with a sweep line: every event start/end and every day and
-- working-hours bound becomes a point; running counts per category between consecutive
-- points give elementary segments, each counted once under the highest-priority category
-- covering it (customer > admin > internal > focus). A segment's day is the local date of
-- its start, and it is working time when it starts within that day's working hours (the
-- bounds are points, so no segment crosses one). A free working segment is a whole gap, as
-- only counted events (and out of office) make points inside working hours: gaps of at least
-- focus_min_minutes are focus, shorter ones fragmented. Tentative events, which leave the
-- time free, have a sweep of their own. Window functions and joins on a person (some with a
-- range beside it) are all it uses, so the query runs on DuckDB and on Spark.
WITH people AS (
    SELECT DISTINCT person, pid, tz FROM person_days
),
timed AS (
    SELECT people.pid, ce.start, ce."end", ce.category
    FROM classified_events AS ce
    JOIN people USING (person)
    WHERE ce.category IN ('customer', 'admin', 'internal', 'focus', 'out_of_office')
),
day_marks AS (
    -- Where a day or its working hours begin or end: segments end there.
    SELECT pid, day_start AS t FROM person_days
    UNION ALL
    SELECT pid, work_start AS t FROM person_days WHERE work_end > work_start
    UNION ALL
    SELECT pid, work_end AS t FROM person_days WHERE work_end > work_start
    UNION ALL
    SELECT pid, day_end AS t FROM person_days
),
marks AS (
    SELECT pid, start AS t, category, 1 AS delta FROM timed
    UNION ALL
    SELECT pid, "end" AS t, category, -1 AS delta FROM timed
    UNION ALL
    SELECT pid, t, CAST(NULL AS VARCHAR) AS category, 0 AS delta FROM day_marks
),
points AS (
    -- The changes of five running counts, up to three to a number: no count reaches 2^20 (a
    -- million overlapping events of one kind), so each takes 20 bits of a BIGINT and one window
    -- sum keeps three counts running instead of three sums.
    SELECT
        pid,
        t,
        CAST(sum(delta * CASE category WHEN 'customer' THEN 1 WHEN 'admin' THEN 1048576
                                       WHEN 'internal' THEN 1099511627776 ELSE 0 END) AS BIGINT) AS d_meetings,
        CAST(sum(delta * CASE category WHEN 'focus' THEN 1 WHEN 'out_of_office' THEN 1048576 ELSE 0 END) AS BIGINT)
            AS d_others
    FROM marks
    GROUP BY pid, t
),
running AS (
    SELECT
        p.pid,
        p.t AS seg_start,
        CAST(timezone(z.tz, p.t) AS DATE) AS day,
        lead(p.t) OVER (PARTITION BY p.pid ORDER BY p.t) AS seg_end,
        CAST(sum(d_meetings) OVER upto AS BIGINT) AS meetings,
        CAST(sum(d_others) OVER upto AS BIGINT) AS others
    FROM points AS p
    JOIN people AS z ON z.pid = p.pid
    WINDOW upto AS (PARTITION BY p.pid ORDER BY p.t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
counts AS (
    SELECT
        *,
        meetings % 1048576 AS n_customer,
        (meetings // 1048576) % 1048576 AS n_admin,
        meetings // 1099511627776 AS n_internal,
        others % 1048576 AS n_focus,
        others // 1048576 AS n_ooo
    FROM running
),
segments AS (
    SELECT
        r.pid,
        pd.day,
        r.seg_start,
        (epoch(r.seg_end) - epoch(r.seg_start)) / 60.0 AS minutes,
        r.seg_start >= pd.work_start AND r.seg_start < pd.work_end AS in_work,
        CASE
            WHEN r.n_customer > 0 THEN 'customer'
            WHEN r.n_admin > 0 THEN 'admin'
            WHEN r.n_internal > 0 THEN 'internal'
            WHEN r.n_focus > 0 THEN 'focus'
        END AS category,
        r.n_customer + r.n_admin + r.n_internal + r.n_focus AS overlapping,
        r.n_ooo > 0 AS ooo
    FROM counts AS r
    JOIN person_days AS pd ON pd.pid = r.pid AND pd.day = r.day
    WHERE r.seg_end IS NOT NULL
),
calendar_day AS (
    SELECT
        pid,
        day,
        sum(CASE WHEN in_work AND NOT ooo THEN minutes ELSE 0 END) / 60.0 AS capacity_hours,
        sum(CASE WHEN in_work AND ooo THEN minutes ELSE 0 END) / 60.0 AS out_of_office_hours,
        sum(CASE WHEN category = 'customer' THEN minutes ELSE 0 END) / 60.0 AS customer_meeting_hours,
        sum(CASE WHEN category = 'internal' THEN minutes ELSE 0 END) / 60.0 AS internal_meeting_hours,
        sum(CASE WHEN category = 'admin' THEN minutes ELSE 0 END) / 60.0 AS admin_hours,
        sum(CASE WHEN category = 'focus' THEN minutes ELSE 0 END) / 60.0 AS focus_block_hours,
        sum(CASE WHEN overlapping >= 2 THEN minutes ELSE 0 END) / 60.0 AS double_booked_hours,
        sum(CASE WHEN category IS NOT NULL AND NOT in_work THEN minutes ELSE 0 END) / 60.0 AS after_hours_meeting_hours,
        sum(CASE WHEN free AND minutes >= focus_min_minutes THEN minutes ELSE 0 END) / 60.0 AS focus_gap_hours,
        sum(CASE WHEN free AND minutes < focus_min_minutes THEN minutes ELSE 0 END) / 60.0 AS fragmented_hours
    FROM (SELECT *, in_work AND NOT ooo AND category IS NULL AS free FROM segments) AS s
    CROSS JOIN rule_settings AS rs
    GROUP BY pid, day
),
tentative AS (
    SELECT people.pid, ce.start, ce."end"
    FROM classified_events AS ce
    JOIN people USING (person)
    WHERE ce.category = 'tentative'
),
tentative_marks AS (
    SELECT pid, start AS t, 1 AS delta FROM tentative
    UNION ALL
    SELECT pid, "end" AS t, -1 AS delta FROM tentative
    UNION ALL
    -- The local midnights inside a tentative event: its time counts on each day it covers.
    -- Each day gives both its midnights, so that the days of some weeks alone (a refresh of
    -- a few person-weeks, outputs/refresh.py) still cut an event at their last midnight.
    SELECT te.pid, pd.day_start AS t, 0 AS delta
    FROM tentative AS te
    JOIN person_days AS pd ON pd.pid = te.pid AND pd.day_start > te.start AND pd.day_start < te."end"
    UNION ALL
    SELECT te.pid, pd.day_end AS t, 0 AS delta
    FROM tentative AS te
    JOIN person_days AS pd ON pd.pid = te.pid AND pd.day_end > te.start AND pd.day_end < te."end"
),
tentative_running AS (
    SELECT
        pid,
        t AS seg_start,
        lead(t) OVER (PARTITION BY pid ORDER BY t) AS seg_end,
        sum(delta) OVER (PARTITION BY pid ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n
    FROM (SELECT pid, t, sum(delta) AS delta FROM tentative_marks GROUP BY pid, t) AS points
),
tentative_day AS (
    SELECT r.pid, CAST(timezone(z.tz, r.seg_start) AS DATE) AS day, sum(epoch(r.seg_end) - epoch(r.seg_start)) / 3600.0 AS tentative_hours
    FROM tentative_running AS r
    JOIN people AS z ON z.pid = r.pid
    WHERE r.n > 0 AND r.seg_end IS NOT NULL
    GROUP BY r.pid, CAST(timezone(z.tz, r.seg_start) AS DATE)
),
located_messages AS (
    SELECT p.pid, m.ts, m.category, m.direction, m.minutes, CAST(timezone(p.tz, m.ts) AS DATE) AS day
    FROM classified_messages AS m
    JOIN people AS p ON p.person = m.person
),
message_days AS (
    SELECT m.*, m.ts >= pd.work_start AND m.ts < pd.work_end AS in_work
    FROM located_messages AS m
    JOIN person_days AS pd ON pd.pid = m.pid AND pd.day = m.day
),
email_day AS (
    SELECT
        m.pid,
        m.day,
        sum(CASE WHEN m.category <> 'automatic' THEN m.minutes ELSE 0 END) / 60.0 AS email_hours,
        sum(CASE WHEN m.category = 'customer' THEN m.minutes ELSE 0 END) / 60.0 AS customer_email_hours,
        sum(CASE WHEN m.category = 'internal' THEN m.minutes ELSE 0 END) / 60.0 AS internal_email_hours,
        sum(CASE WHEN m.category = 'cc_only' THEN m.minutes ELSE 0 END) / 60.0 AS cc_only_email_hours,
        sum(CASE WHEN m.category = 'bulk' THEN m.minutes ELSE 0 END) / 60.0 AS bulk_email_hours,
        sum(CASE WHEN m.direction = 'sent' AND m.category <> 'automatic' AND NOT m.in_work THEN m.minutes ELSE 0 END)
            / 60.0 AS after_hours_email_hours,
        CAST(sum(CASE WHEN m.direction = 'sent' AND m.category <> 'automatic' THEN 1 ELSE 0 END) AS BIGINT)
            AS emails_sent,
        CAST(sum(CASE WHEN m.direction = 'received' AND m.category <> 'automatic' THEN 1 ELSE 0 END) AS BIGINT)
            AS emails_received
    FROM message_days AS m
    GROUP BY m.pid, m.day
)
SELECT
        g.person,
        g.day,
        g.week,
        g.week_start,
        coalesce(c.capacity_hours, 0) AS capacity_hours,
        coalesce(c.customer_meeting_hours, 0) AS customer_meeting_hours,
        coalesce(c.internal_meeting_hours, 0) AS internal_meeting_hours,
        coalesce(c.admin_hours, 0) AS admin_hours,
        coalesce(c.focus_block_hours, 0) + coalesce(c.focus_gap_hours, 0) AS focus_hours,
        coalesce(c.fragmented_hours, 0) AS fragmented_hours,
        coalesce(e.email_hours, 0) AS email_hours,
        coalesce(e.customer_email_hours, 0) AS customer_email_hours,
        coalesce(e.internal_email_hours, 0) AS internal_email_hours,
        coalesce(e.cc_only_email_hours, 0) AS cc_only_email_hours,
        coalesce(e.bulk_email_hours, 0) AS bulk_email_hours,
        coalesce(c.double_booked_hours, 0) AS double_booked_hours,
        coalesce(c.after_hours_meeting_hours, 0) + coalesce(e.after_hours_email_hours, 0) AS after_hours_hours,
        coalesce(e.after_hours_email_hours, 0) AS after_hours_email_hours,
        coalesce(t.tentative_hours, 0) AS tentative_hours,
        coalesce(c.out_of_office_hours, 0) AS out_of_office_hours,
        coalesce(e.emails_sent, 0) AS emails_sent,
        coalesce(e.emails_received, 0) AS emails_received
    FROM person_days AS g
    LEFT JOIN calendar_day AS c ON c.pid = g.pid AND c.day = g.day
    LEFT JOIN tentative_day AS t ON t.pid = g.pid AND t.day = g.day
    LEFT JOIN email_day AS e ON e.pid = g.pid AND e.day = g.day
