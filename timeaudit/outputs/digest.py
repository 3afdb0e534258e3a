"""The weekly digest: one message per recipient, built whole before anything is sent.

A lead gets the week of each team they lead that the privacy gate shows on its own
(``timeaudit.privacy.visible_groups``); a person who opted in (``digest.people_opt_in``)
gets their own week, addressed to them only; a team's chat channel gets a compact message.
Each message holds the headline figures against last week and the four weeks before, the
goals, the top three time wasters with their suggested action and the hours they give back,
neglected customers and customer emails waiting, and a link to the dashboard. Colleagues are
named only where the recipient's ``Access`` may see them; individual figures reach a lead
only with ``privacy.leads_see_individuals``.

Mail is HTML (inline styles, no scripts; charts as inline PNG images referenced by Content-ID)
with a plain-text part. Delivery is ``timeaudit.outputs.delivery``.
"""

from __future__ import annotations

import html
import math
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pandas as pd

from timeaudit.analysis.goals import GoalCheck
from timeaudit.analysis.metrics import Analysis, customer_share, open_analysis
from timeaudit.core.config import ChatChannel, Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Person
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import weekly_metrics
from timeaudit.outputs.figures import goals_figure, share_trend_figure
from timeaudit.outputs.summary import Summary, build_summary
from timeaudit.privacy import HIDDEN, Access, access_for, visible_groups

AUDIENCES = ("leads", "people", "all")
TOP_WASTERS = 3
TREND_WEEKS = 12


@dataclass(frozen=True)
class Recipient:
    kind: str  # "lead" | "person" | "channel"
    address: str  # an email address; for a channel, "slack:TEAM" or "teams:TEAM"
    name: str
    teams: tuple[str, ...] = ()  # a lead's teams, a channel's team
    channel: ChatChannel | None = None

    @property
    def key(self) -> str:
        """What the record of sent digests remembers this recipient by."""
        return f"{self.kind}:{self.address}"


@dataclass(frozen=True)
class Figure:
    label: str
    this_week: float
    last_week: float
    four_weeks: float  # the average of the four weeks before this one
    unit: str  # "share" | "hours"


@dataclass
class Section:
    """One team's or one person's week, as one recipient may see it."""

    title: str
    summary: Summary
    figures: list[Figure]
    goals: list[GoalCheck]
    wasters: pd.DataFrame  # Meeting, Suggestion, Serves goal, Hours back per week
    neglected: pd.DataFrame  # Customer, Tier, Owner, Days silent
    waiting: pd.DataFrame  # Received, Customer, Held by, Working hours waiting
    individuals: pd.DataFrame | None = None  # per person, only where the settings allow
    charts: list[tuple[str, str, bytes]] = field(default_factory=list)  # (content id, title, PNG)


@dataclass
class Digest:
    recipient: Recipient
    week: str
    subject: str
    sections: list[Section]
    message: EmailMessage | None = None  # mail recipients
    payload: dict | None = None  # chat channels
    withheld: str = ""  # why this recipient gets nothing ("" = something to send)
    already_sent: bool = False  # this week's digest reached them on an earlier run: nothing built


# -- figures ------------------------------------------------------------------------------------
HEADLINE = [  # label, columns summed, unit
    ("Customer share", (), "share"),
    ("With customers", ("customer_meeting_hours", "customer_email_hours"), "hours"),
    ("Internal meetings", ("internal_meeting_hours",), "hours"),
    ("Admin", ("admin_hours",), "hours"),
    ("Email", ("email_hours",), "hours"),
    ("Focus", ("focus_hours",), "hours"),
]


def headline(weekly: pd.DataFrame) -> list[Figure]:
    """This week, last week and the average of the four weeks before, hours per person
    (``weekly``: ``summary.weekly``, oldest first, with ``people``)."""
    this, last, before = weekly.iloc[-1:], weekly.iloc[-2:-1], weekly.iloc[-5:-1]

    def value(rows: pd.DataFrame, columns: tuple[str, ...], unit: str) -> float:
        rows = rows[rows["people"] > 0]
        if rows.empty:
            return float("nan")
        if unit == "share":
            return float(customer_share(rows.sum(numeric_only=True).to_frame().T).iloc[0])
        return float((rows[list(columns)].sum(axis=1) / rows["people"]).mean())

    return [Figure(label, value(this, c, u), value(last, c, u), value(before, c, u), u) for label, c, u in HEADLINE]


def fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.0%}" if unit == "share" else f"{value:.1f} h"


def change(now: float, then: float, unit: str) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (now, then)):
        return ""
    diff = now - then
    return f"{diff * 100:+.0f} pts" if unit == "share" else f"{diff:+.1f} h"


# -- who may see whom ----------------------------------------------------------------------------
def named(access: Access, addresses: str, names: dict[str, str]) -> str:
    """Comma-separated addresses as the recipient may see them: names of those they may see
    individually, "a colleague" for the rest."""
    shown: list[str] = []
    for address in (a.strip().lower() for a in str(addresses or "").split(",")):
        if not address:
            continue
        label = names.get(address, address) if access.may_see_person(address) else HIDDEN
        if label not in shown:
            shown.append(label)
    return ", ".join(shown)


def section_for(summary: Summary, access: Access, names: dict[str, str], metrics: pd.DataFrame) -> Section:
    wasters = summary.wasters[summary.wasters["Suggestion"] != "keep"].head(TOP_WASTERS)
    neglected = summary.neglected.assign(Owner=[named(access, o, names) for o in summary.neglected["Owner"]])
    waiting = summary.waiting.assign(**{"Held by": [named(access, h, names) for h in summary.waiting["Held by"]]})
    individuals = None
    if summary.scope == "team" and access.role == "lead" and access.leads_see_individuals:
        rows = metrics[(metrics["week"] == summary.week) & (metrics["team"] == summary.subject)]
        rows = access.people_rows(rows)
        individuals = pd.DataFrame(
            {
                "Person": [names.get(p, p) for p in rows["person"]],
                "Customer share": [fmt(v, "share") for v in rows["customer_share"]],
                "Internal meetings": rows["internal_meeting_hours"].to_numpy(),
                "Admin": rows["admin_hours"].to_numpy(),
                "Focus": rows["focus_hours"].to_numpy(),
            }
        ).sort_values("Person")
    title = summary.subject if summary.scope == "team" else "Your week"
    return Section(
        title,
        summary,
        headline(summary.weekly),
        summary.goals,
        wasters.reset_index(drop=True),
        neglected.reset_index(drop=True),
        waiting.reset_index(drop=True),
        individuals,
    )


# -- building -------------------------------------------------------------------------------------
def recipients(settings: Settings, people: list[Person], to: str) -> list[Recipient]:
    """Leads (and the teams' chat channels) for ``leads``, opted-in people for ``people``."""
    if to not in AUDIENCES:
        raise UserError(f"--to {to}: unknown; use one of {', '.join(AUDIENCES)}")
    out: list[Recipient] = []
    on_roster = {p.email: p for p in people}
    if to in ("leads", "all"):
        for p in sorted((p for p in people if p.role == "lead"), key=lambda p: p.email):
            led = tuple(dict.fromkeys([p.team, *p.leads]))
            out.append(Recipient("lead", p.email, p.name or p.email, led))
        for c in settings.digest.channels:
            out.append(Recipient("channel", f"{c.kind}:{c.team}", f"{c.team} channel ({c.kind})", (c.team,), c))
    if to in ("people", "all"):
        for address in settings.digest.people_opt_in:
            if address not in on_roster:
                raise UserError(
                    f"digest.people_opt_in: {address} is not on the roster; remove it or add them to the roster"
                )
            p = on_roster[address]
            out.append(Recipient("person", p.email, p.name or p.email))
    return out


ChartRenderer = Callable[[object], bytes]


def build_digests(
    lake: Lake,
    settings: Settings,
    week: str,
    to: str = "leads",
    render_png: ChartRenderer | None = None,
    progress: Callable[[str], None] | None = None,
    analysis: Analysis | None = None,
    already_sent: Callable[[Recipient], bool] | None = None,
) -> list[Digest]:
    """Every recipient's digest for ``week``, whole (charts drawn, messages made): nothing
    is sent here, so a failure leaves nothing half-sent. Recipients ``already_sent`` says
    have had this week's get an empty digest (``already_sent`` set), not built again."""
    if render_png is None:
        from timeaudit.outputs.export import figure_png as render_png
    analysis = analysis or open_analysis(lake, settings)
    metrics = weekly_metrics(lake, settings, analysis, stored_first=True)
    people = analysis.people
    teams = {p.email: p.team for p in people}
    names = {p.email: p.name or p.email for p in people}
    groups = visible_groups(teams, settings.privacy.min_group_size)
    unknown = sorted(set(settings.goals.teams) - set(teams.values()))
    if unknown:
        raise UserError(
            f"goals.teams.{unknown[0]}: no such team on the roster; use one of {', '.join(sorted(set(teams.values())))}"
        )
    summaries: dict[tuple[str, str], Summary] = {}
    wanted: dict[tuple[str, str], list] = {}  # (kind, subject) -> its figures, drawn together below

    def summary_of(kind: str, subject: str) -> Summary:
        if (kind, subject) not in summaries:
            if progress:
                progress(f"{subject}: figures")
            arguments = {"team": subject} if kind == "team" else {"person": subject}
            summaries[kind, subject] = build_summary(
                lake, settings, week, weeks=TREND_WEEKS, metrics=metrics, analysis=analysis, **arguments
            )
        return summaries[kind, subject]

    def want_charts(kind: str, subject: str, summary: Summary) -> tuple[str, str]:
        if (kind, subject) not in wanted:
            goals = settings.goals_for(summary.team)
            label = subject if kind == "team" else "Your"
            wanted[kind, subject] = [
                share_trend_figure(summary.weekly, target=goals.customer_share, title=f"{label}: customer share"),
                goals_figure(summary.weekly, goals, f"{label}: hours per person against the goals"),
            ]
        return kind, subject

    planned: list[tuple[Recipient, list[tuple[Section, tuple[str, str] | None]], str, bool]] = []
    for r in recipients(settings, people, to):
        if already_sent and already_sent(r):
            planned.append((r, [], "", True))
            continue
        if r.kind == "person":
            access = access_for(r.address, settings, people, teams)
            summary = summary_of("person", r.address)
            planned.append(
                (
                    r,
                    [(section_for(summary, access, names, metrics), want_charts("person", r.address, summary))],
                    "",
                    False,
                )
            )
            continue
        shown = [t for t in r.teams if t in groups.teams]
        if not shown:
            reason = (
                f"{', '.join(r.teams)}: not shown on its own (fewer than privacy.min_group_size "
                f"= {settings.privacy.min_group_size} people, or pooled with such a team)"
            )
            planned.append((r, [], reason, False))
            continue
        # A channel is read by the whole team: nobody is named there, and it gets a link, not images.
        access = (
            access_for(r.address, settings, people, teams)
            if r.kind == "lead"
            else Access("", "member", teams, min_group_size=settings.privacy.min_group_size)
        )
        parts = []
        for team in shown:
            summary = summary_of("team", team)
            parts.append(
                (
                    section_for(summary, access, names, metrics),
                    want_charts("team", team, summary) if r.kind == "lead" else None,
                )
            )
        planned.append((r, parts, "", False))

    if progress and wanted:
        progress(f"drawing {sum(len(f) for f in wanted.values())} charts")
    charts = draw_charts(wanted, render_png)
    digests: list[Digest] = []
    for r, parts, withheld, sent in planned:
        if withheld or sent:
            digests.append(Digest(r, week, "", [], withheld=withheld, already_sent=sent))
            continue
        sections = []
        for section, key in parts:
            section.charts = charts[key] if key else []
            sections.append(section)
        digest = Digest(r, week, subject_line(r, week, sections), sections)
        if r.kind == "channel":
            digest.payload = chat_payload(digest, settings)
        else:
            digest.message = email_message(digest, settings)
        digests.append(digest)
    return digests


CHART_WORKERS = 2  # each chart is one Chromium start: two at once


def draw_charts(wanted: dict[tuple[str, str], list], render_png: ChartRenderer) -> dict:
    """(kind, subject) -> [(content id, title, PNG)], every figure drawn, a few at a time."""
    jobs = [(key, i, figure) for key, figures in wanted.items() for i, figure in enumerate(figures)]
    with ThreadPoolExecutor(max_workers=CHART_WORKERS) as pool:
        images = list(pool.map(lambda job: render_png(job[2]), jobs))
    out: dict[tuple[str, str], list[tuple[str, str, bytes]]] = {key: [] for key in wanted}
    for (key, i, figure), png in zip(jobs, images, strict=True):
        slug = re.sub(r"[^a-z0-9]+", "-", key[1].lower()).strip("-")
        out[key].append((f"{slug}-{i}.{secrets.token_hex(6)}@timeaudit", figure.layout.title.text, png))
    return out


def subject_line(r: Recipient, week: str, sections: list[Section]) -> str:
    """Short enough not to be folded: Python folds a long header holding "%" onto a line of
    its own, which some clients show with a leading space."""
    checks = [c for s in sections for c in s.goals if c.on_track is not None]
    on = sum(1 for c in checks if c.on_track)
    goals = f"{on} of {len(checks)} goals on track" if checks else "no goals set"
    if r.kind == "person":
        who = "Your week"
    else:
        who = sections[0].title if len(sections) == 1 else "Your teams"
    share = f", customer share {fmt(sections[0].figures[0].this_week, 'share')}" if len(sections) == 1 else ""
    return f"{who}, {week}: {goals}{share}"


def dashboard_link(settings: Settings, page: str) -> str:
    url = settings.digest.dashboard_url
    return f"{url.rstrip('/')}/{page}" if url else ""


# -- mail --------------------------------------------------------------------------------------
def sender(settings: Settings) -> str:
    if settings.digest.smtp.sender:
        return settings.digest.smtp.sender
    domain = settings.organisation.domains[0] if settings.organisation.domains else "localhost"
    return str(Address("timeaudit", "timeaudit", domain))


def email_message(digest: Digest, settings: Settings) -> EmailMessage:
    """multipart/alternative: the plain text, then multipart/related with the HTML and its charts."""
    r = digest.recipient
    msg = EmailMessage()
    msg["Subject"] = digest.subject
    msg["From"] = sender(settings)
    user, _, domain = r.address.partition("@")
    msg["To"] = Address(r.name, user, domain)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=domain or None)
    msg["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to a report
    msg["X-Timeaudit-Digest"] = f"{digest.week} {r.key}"
    msg.set_content(digest_text(digest, settings))
    msg.add_alternative(digest_html(digest, settings), subtype="html")
    html_part = msg.get_payload()[1]
    for section in digest.sections:
        for cid, title, png in section.charts:
            html_part.add_related(
                png, "image", "png", cid=f"<{cid}>", filename=f"{_slug(title)}.png", disposition="inline"
            )
    return msg


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


def _rows_text(frame: pd.DataFrame) -> list[str]:
    def cell(v) -> str:
        return f"{v:.1f}" if isinstance(v, float) and not math.isnan(v) else str(v)

    return [
        "  - " + " | ".join(f"{c}: {cell(v)}" for c, v in zip(frame.columns, row, strict=True))
        for row in frame.itertuples(index=False)
    ]


def digest_text(digest: Digest, settings: Settings) -> str:
    lines = [digest.subject, ""]
    for s in digest.sections:
        lines += [s.title, "=" * len(s.title), "", "This week (per person), last week, average of the 4 weeks before:"]
        for f in s.figures:
            lines.append(
                f"  {f.label}: {fmt(f.this_week, f.unit)} (last week {fmt(f.last_week, f.unit)}, "
                f"4 weeks {fmt(f.four_weeks, f.unit)})"
            )
        lines += ["", "Goals:"] + [f"  {c.sentence()}" for c in s.goals] + [""]
        lines.append("Top time wasters, what to do, and the hours it gives back each week:")
        lines += [
            f"  {w['Meeting']}: {w['Suggestion']} (serves the {w['Serves goal'].lower()}), "
            f"{w['Hours back per week']:.1f} h back per week"
            for _, w in s.wasters.iterrows()
        ] or ["  None."]
        lines += ["", "Customers neglected:"] + (_rows_text(s.neglected) or ["  None."])
        lines += ["", "Customer emails waiting for an answer:"] + (_rows_text(s.waiting) or ["  None."])
        if s.individuals is not None:
            lines += ["", "Per person:"] + _rows_text(s.individuals)
        lines.append("")
    link = dashboard_link(settings, "team" if digest.recipient.kind != "person" else "")
    if link:
        lines.append(f"Open the dashboard: {link}")
    lines.append("Sent by timeaudit. Figures are metadata only: no email or event content.")
    return "\n".join(lines) + "\n"


# Inline styles only: mail clients drop <style> blocks and never run scripts.
_TABLE = 'style="border-collapse:collapse;font-size:14px;margin:4px 0 16px 0"'
_TH = 'style="text-align:left;border-bottom:2px solid #ccc;padding:4px 8px"'
_TD = 'style="border-bottom:1px solid #eee;padding:4px 8px"'
_H2 = 'style="font-size:18px;margin:24px 0 8px 0"'
_H3 = 'style="font-size:15px;margin:16px 0 6px 0"'
_STATUS = {True: "#1b7e3c", False: "#b3261e", None: "#666"}


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>None.</p>"

    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.1f}"
        return html.escape(str(v))

    head = "".join(f"<th {_TH}>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td {_TD}>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    return f"<table {_TABLE}><tr>{head}</tr>{body}</table>"


def digest_html(digest: Digest, settings: Settings) -> str:
    e = html.escape
    parts = [f'<h1 style="font-size:20px;margin:0 0 8px 0">{e(digest.subject)}</h1>']
    for s in digest.sections:
        parts.append(f"<h2 {_H2}>{e(s.title)}</h2>")
        rows = "".join(
            f"<tr><td {_TD}>{e(f.label)}</td><td {_TD}><b>{fmt(f.this_week, f.unit)}</b></td>"
            f"<td {_TD}>{fmt(f.last_week, f.unit)} ({change(f.this_week, f.last_week, f.unit) or '–'})</td>"
            f"<td {_TD}>{fmt(f.four_weeks, f.unit)} ({change(f.this_week, f.four_weeks, f.unit) or '–'})</td></tr>"
            for f in s.figures
        )
        parts.append(
            f"<table {_TABLE}><tr><th {_TH}>Per person</th><th {_TH}>This week</th><th {_TH}>Last week</th>"
            f"<th {_TH}>4-week average</th></tr>{rows}</table>"
        )
        goal_rows = "".join(
            f"<tr><td {_TD}>{e(c.goal.label)}</td><td {_TD}>{e(c.actual_text)}</td><td {_TD}>{e(c.target_text)}</td>"
            f'<td {_TD}><b style="color:{_STATUS[c.on_track]}">{e(c.status)}</b></td></tr>'
            for c in s.goals
        )
        parts.append(f"<h3 {_H3}>Goals</h3>")
        parts.append(
            f"<table {_TABLE}><tr><th {_TH}>Goal</th><th {_TH}>This week</th><th {_TH}>Target</th>"
            f"<th {_TH}>Status</th></tr>{goal_rows}</table>"
            if s.goals
            else "<p>No goals are set.</p>"
        )
        for cid, title, _png in s.charts:
            parts.append(
                f'<p style="margin:8px 0"><img src="cid:{e(cid)}" alt="{e(title)}" width="640" '
                f'style="display:block;max-width:100%;height:auto;border:0"></p>'
            )
        parts.append(f"<h3 {_H3}>Top time wasters</h3>")
        parts.append(_table(s.wasters.rename(columns={"Hours back per week": "Hours back / week"})))
        parts.append(f"<h3 {_H3}>Customers neglected</h3>{_table(s.neglected)}")
        parts.append(f"<h3 {_H3}>Customer emails waiting for an answer</h3>{_table(s.waiting)}")
        if s.individuals is not None:
            parts.append(f"<h3 {_H3}>Per person</h3>{_table(s.individuals)}")
    link = dashboard_link(settings, "team" if digest.recipient.kind != "person" else "")
    if link:
        parts.append(f'<p><a href="{e(link)}" style="color:#1f5fbf">Open the dashboard</a></p>')
    parts.append(
        '<p style="color:#666;font-size:12px">Sent by timeaudit. Metadata only: no email or event content.</p>'
    )
    body = "".join(parts)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(digest.subject)}</title></head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#222;margin:0;padding:16px;max-width:760px">'
        f"{body}</body></html>"
    )


# -- chat ---------------------------------------------------------------------------------------
def chat_payload(digest: Digest, settings: Settings) -> dict:
    """A compact message for a Slack or Microsoft Teams incoming webhook: headline figures,
    the goals, and a link to the dashboard's charts. Nobody is named."""
    s = digest.sections[0]
    facts = [
        (f.label, f"{fmt(f.this_week, f.unit)} ({change(f.this_week, f.last_week, f.unit) or '–'} on last week)")
        for f in s.figures
    ]
    goals = [(c.goal.label, f"{c.actual_text}: {c.status}") for c in s.goals]
    link = dashboard_link(settings, "team")
    title = f"{s.title}, {digest.week}"
    if digest.recipient.channel and digest.recipient.channel.kind == "teams":
        body = [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": title, "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]},
            {"type": "TextBlock", "weight": "Bolder", "text": "Goals", "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in goals]},
        ]
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }
        if link:
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the charts", "url": link}]
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    lines = "\n".join(f"*{k}*: {slack_text(v)}" for k, v in facts)
    goal_lines = "\n".join(f"*{k}*: {slack_text(v)}" for k, v in goals)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Goals*\n{goal_lines}"}},
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{slack_text(link)}|Open the charts>"}})
    return {"text": f"timeaudit: {digest.subject}", "blocks": blocks}


def slack_text(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally: &, < and > escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
