-- One row per person-week: the person-day rows of daily.sql summed, the person's name and
-- team, and the customer share customer / (customer meetings + internal meetings + admin +
-- all email). Inputs: `daily_metrics` (daily.sql), `roster_people(person, name, team)`.
WITH weeks AS (
    SELECT
        week,
        min(week_start) AS week_start,
        person,
        sum(capacity_hours) AS capacity_hours,
        sum(customer_meeting_hours) AS customer_meeting_hours,
        sum(internal_meeting_hours) AS internal_meeting_hours,
        sum(admin_hours) AS admin_hours,
        sum(focus_hours) AS focus_hours,
        sum(fragmented_hours) AS fragmented_hours,
        sum(email_hours) AS email_hours,
        sum(customer_email_hours) AS customer_email_hours,
        sum(internal_email_hours) AS internal_email_hours,
        sum(cc_only_email_hours) AS cc_only_email_hours,
        sum(bulk_email_hours) AS bulk_email_hours,
        sum(double_booked_hours) AS double_booked_hours,
        sum(after_hours_hours) AS after_hours_hours,
        sum(after_hours_email_hours) AS after_hours_email_hours,
        sum(tentative_hours) AS tentative_hours,
        sum(out_of_office_hours) AS out_of_office_hours,
        CAST(sum(emails_sent) AS BIGINT) AS emails_sent,
        CAST(sum(emails_received) AS BIGINT) AS emails_received
    FROM daily_metrics
    GROUP BY week, person
)
SELECT
    w.week,
    w.week_start,
    w.person,
    rp.name,
    rp.team,
    w.* EXCLUDE (week, week_start, person),
    CASE
        WHEN customer_meeting_hours + internal_meeting_hours + admin_hours + email_hours > 0
        THEN (customer_meeting_hours + customer_email_hours)
             / (customer_meeting_hours + internal_meeting_hours + admin_hours + email_hours)
    END AS customer_share,
    email_hours - customer_email_hours AS non_customer_email_hours
FROM weeks AS w
LEFT JOIN roster_people AS rp ON rp.person = w.person
ORDER BY w.week, w.person
