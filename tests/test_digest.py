"""`timeaudit digest` on the demo organisation, delivered to a real SMTP server (aiosmtpd) and a
loopback webhook server, the messages parsed back; the HTML drawn in headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from digest_standins import SmtpServer, WebhookServer
from graph_standin import make_tls

from timeaudit.analysis.metrics import team_weekly
from timeaudit.core.config import load_settings
from timeaudit.core.errors import UserError
from timeaudit.core.roster import load_people
from timeaudit.lake.store import Lake
from timeaudit.outputs.delivery import SENT_FILE, SentLog, deliver
from timeaudit.outputs.derived import weekly_metrics
from timeaudit.outputs.digest import build_digests

from conftest import DEMO_WEEKS, ROOT

LAST_WEEK = "2026-W47"  # the demo's last complete week (conftest.DEMO_END is the Monday after it)
PNG = b"\x89PNG\r\n\x1a\n"


def copy_demo(demo_dir: Path, folder: Path, extra: str) -> Path:
    """A copy of the demo's data folder (a digest run records what it sent there), with
    ``extra`` TOML appended to its settings."""
    shutil.copytree(demo_dir, folder)
    config = folder / "timeaudit.toml"
    config.write_text(config.read_text() + "\n" + extra)
    return folder


def smtp_settings(port: int, **more) -> str:
    lines = [
        "[digest]",
        'dashboard_url = "https://timeaudit.example.com"',
        "retry_seconds = 0",
        *(f"{k} = {json.dumps(v)}" for k, v in more.items()),
        "[digest.smtp]",
        'host = "127.0.0.1"',
        f"port = {port}",
        'security = "plain"',
    ]
    return "\n".join(lines) + "\n"


def run_digest(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TIMEAUDIT_CONFIG", "TIMEAUDIT_DATA")}
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", "digest", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        cwd=data,
    )


def leads_of(data: Path) -> dict[str, str]:
    people = load_people(load_settings(data / "timeaudit.toml"))
    return {p.email: p.team for p in people if p.role == "lead"}


def parts_of(message) -> dict:
    """The MIME tree the digest promises: alternative(text/plain, related(text/html, PNG...))."""
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    return {"text": plain.get_content(), "html": html_part.get_content(), "images": images}


def test_each_lead_gets_their_teams_week_and_a_second_run_sends_nothing(demo_dir, tmp_path):
    with SmtpServer() as smtp:
        data = copy_demo(demo_dir, tmp_path / "data", smtp_settings(smtp.port))
        done = run_digest(data, "--week", "last")
        assert done.returncode == 0, done.stderr
        leads = leads_of(data)
        assert len(smtp.received) == len(leads) == 4  # the demo's teams with a lead
        metrics = weekly_metrics(Lake(data), load_settings(data / "timeaudit.toml"))
        teams = team_weekly(metrics, 5)
        for mail in smtp.received:
            [address] = mail.recipients  # one message per lead, to that lead only
            assert mail.message["To"].addresses[0].addr_spec == address
            team = leads[address]
            parts = parts_of(mail.message)
            row = teams[(teams["team"] == team) & (teams["week"] == LAST_WEEK)].iloc[0]
            assert mail.message["Subject"].startswith(f"{team}, {LAST_WEEK}: ")
            assert mail.message["Subject"].endswith(f"goals on track, customer share {row['customer_share']:.0%}")
            assert f"Customer share: {row['customer_share']:.0%} (last week" in parts["text"]
            per_person = row["internal_meeting_hours"] / row["people"]
            assert f"Meeting budget: {per_person:.1f} h/person against at most 8.0 h/person" in parts["text"]
            assert "Top time wasters" in parts["text"] and "https://timeaudit.example.com/team" in parts["text"]
            # Charts: inline PNGs that the HTML refers to by Content-ID; no scripts, no <style>.
            assert len(parts["images"]) == 2
            for image in parts["images"]:
                assert image.get_content_type() == "image/png" and image.get_content().startswith(PNG)
                assert f'src="cid:{image["Content-ID"].strip("<>")}"' in parts["html"]
            assert "<script" not in parts["html"].lower() and "<style" not in parts["html"].lower()
            assert "off track" in parts["html"] or "on track" in parts["html"]
        record = data / "state" / SENT_FILE
        assert oct(record.stat().st_mode & 0o777) == "0o600"
        assert set(json.loads(record.read_text())[LAST_WEEK]) == {f"lead:{a}" for a in leads}

        again = run_digest(data, "--week", "last")
        assert again.returncode == 0, again.stderr
        assert len(smtp.received) == 4  # nothing new
        assert sum(line.startswith("already sent email") for line in again.stderr.splitlines()) == 4
        assert "4 already sent" in again.stderr


def test_a_refused_recipient_fails_the_run_and_the_others_are_still_delivered(demo_dir, tmp_path):
    refused = "kira.chen@northwind-demo.com"
    with SmtpServer(refuse={refused}) as smtp:
        data = copy_demo(demo_dir, tmp_path / "data", smtp_settings(smtp.port))
        done = run_digest(data, "--week", LAST_WEEK)
        assert done.returncode == 1
        assert f"failed email {refused}: refused: {refused}: 550" in " ".join(done.stderr.split())
        assert sorted(m.recipients[0] for m in smtp.received) == sorted(set(leads_of(data)) - {refused})
        smtp.handler.refuse.clear()  # the mailbox is fixed: the next run sends only what is missing
        again = run_digest(data, "--week", LAST_WEEK)
        assert again.returncode == 0, again.stderr
        assert [m.recipients for m in smtp.received[3:]] == [[refused]]


def test_one_run_sends_at_a_time(demo_dir, tmp_path):
    data = copy_demo(demo_dir, tmp_path / "data", smtp_settings(9))
    with SentLog(data / "state").hold():
        done = run_digest(data, "--week", LAST_WEEK)
    assert done.returncode == 2
    assert "another `timeaudit digest` is sending right now" in " ".join(done.stderr.split())


def test_dry_run_writes_messages_and_sends_nothing(demo_dir, tmp_path):
    person = "umar.adams@northwind-demo.com"
    data = copy_demo(demo_dir, tmp_path / "data", smtp_settings(9, people_opt_in=[person]))
    done = run_digest(data, "--week", LAST_WEEK, "--to", "people", "--dry-run", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    [written] = list((tmp_path / "out").iterdir())
    assert written.suffix == ".eml" and oct(written.stat().st_mode & 0o777) == "0o600"
    from email import message_from_bytes, policy

    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == person
    assert parts_of(message)["text"].startswith(f"Your week, {LAST_WEEK}")
    assert not (data / "state" / SENT_FILE).exists()  # a dry run is not a delivery


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[goals]\nmeeting_hours = -2\n", "'goals.meeting_hours' is invalid"),
        ("[goals.teams.Suport]\nfocus_hours = 12\n", "goals.teams.Suport: no such team on the roster"),
    ],
    ids=["bad_value", "unknown_team"],
)
def test_a_config_mistake_names_the_field(demo_dir, tmp_path, extra, expected):
    data = copy_demo(demo_dir, tmp_path / "data", extra)
    done = run_digest(data, "--week", LAST_WEEK, "--dry-run", str(tmp_path / "out"))
    assert done.returncode == 2
    assert expected in " ".join(done.stderr.split())
    assert not (tmp_path / "out").exists()  # nothing half-written


# -- in process: one build, many deliveries -----------------------------------------------------
SMALL_TEAMS = "[privacy]\nmin_group_size = 9\nleads_see_individuals = true\n"  # only Support (10) is shown


@pytest.fixture(scope="module")
def built(demo_dir, tmp_path_factory):
    """Digests for everyone, with only Support big enough to be shown, leads allowed to see
    their people, one Sales member opted in, and Support's Slack and Teams channels."""
    folder = tmp_path_factory.mktemp("digest")
    hooks = WebhookServer(fail={"/teams-broken"})
    hooks.__enter__()
    for name, path in (("slack", "/slack-support"), ("teams", "/teams-broken")):
        secret = folder / f"{name}-webhook.txt"
        secret.write_text(hooks.url + path + "\n")
        secret.chmod(0o600)
    extra = (
        SMALL_TEAMS
        + smtp_settings(1, people_opt_in=["dev.diaz@northwind-demo.com"], attempts=2)
        + "\n".join(
            f'[[digest.channels]]\nteam = "Support"\nkind = "{k}"\nwebhook_file = "{folder}/{k}-webhook.txt"'
            for k in ("slack", "teams")
        )
        + "\n"
    )
    data = copy_demo(demo_dir, folder / "data", extra)
    settings = load_settings(data / "timeaudit.toml")
    digests = build_digests(Lake(data), settings, LAST_WEEK, "all")
    yield data, settings, digests, hooks
    hooks.__exit__()


def by_address(digests) -> dict:
    return {d.recipient.address: d for d in digests}


def test_team_digests_follow_the_minimum_group_size_and_leads_see_individuals_only_when_allowed(built):
    data, settings, digests, _ = built
    found = by_address(digests)
    people = load_people(settings)
    support = {p.name for p in people if p.team == "Support"}
    kira = found["kira.chen@northwind-demo.com"]
    assert not kira.withheld and [s.title for s in kira.sections] == ["Support"]
    text = parts_of(kira.message)["text"]
    assert "Per person:" in text and all(name in text for name in support)
    for lead in ("mei.adams@northwind-demo.com", "jonas.jones@northwind-demo.com", "chloe.berg@northwind-demo.com"):
        assert found[lead].withheld and found[lead].message is None  # their teams are pooled
    # A person's digest goes to them only and names no colleague outside what they may see.
    dev = found["dev.diaz@northwind-demo.com"]
    assert [a.addr_spec for a in dev.message["To"].addresses] == ["dev.diaz@northwind-demo.com"]
    dev_text = parts_of(dev.message)["text"]
    others = {p.name for p in people if p.email != "dev.diaz@northwind-demo.com" and p.name}
    assert not [n for n in others if n in dev_text]
    assert "Per person:" not in dev_text


def test_channels_get_a_compact_message_and_a_failing_one_is_retried_and_reported(built, tmp_path):
    data, settings, digests, hooks = built
    with SmtpServer() as smtp:
        settings = settings.model_copy(deep=True)
        settings.digest.smtp.port = smtp.port
        log = SentLog(tmp_path / "state")
        outcomes = {o.recipient: o for o in deliver(digests, settings, log, sleep=lambda s: None)}
        assert outcomes["slack:Support"].status == "sent"
        assert outcomes["teams:Support"].status == "failed"
        assert "HTTP 500 (after 2 attempts)" in outcomes["teams:Support"].detail
        assert outcomes["kira.chen@northwind-demo.com"].status == "sent"
        assert outcomes["dev.diaz@northwind-demo.com"].status == "sent"
        assert outcomes["mei.adams@northwind-demo.com"].status == "withheld"
        assert sorted(m.recipients[0] for m in smtp.received) == [
            "dev.diaz@northwind-demo.com",
            "kira.chen@northwind-demo.com",
        ]
    [(path, payload)] = hooks.posts
    assert path == "/slack-support"
    blocks = payload["blocks"]
    assert blocks[0]["text"]["text"] == f"Support, {LAST_WEEK}"
    assert "*Customer share*" in blocks[1]["text"]["text"] and "*Goals*" in blocks[2]["text"]["text"]
    assert "https://timeaudit.example.com/team" in blocks[-1]["text"]["text"]
    support = {p.name for p in load_people(settings) if p.team == "Support"}
    assert not [n for n in support if n in json.dumps(payload)]  # a channel names nobody
    card = by_address(digests)["teams:Support"].payload["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][1]["type"] == "FactSet"


def test_starttls_and_a_login_from_a_private_password_file(built, tmp_path):
    data, settings, digests, _ = built
    ca, cert, key = make_tls(tmp_path / "tls")
    password = tmp_path / "smtp-password"
    password.write_text("s3cret\n")
    password.chmod(0o600)
    kira = [by_address(digests)["kira.chen@northwind-demo.com"]]
    with SmtpServer(tls=(cert, key), login=("timeaudit", "s3cret")) as smtp:
        settings = settings.model_copy(deep=True)
        smtp_cfg = settings.digest.smtp
        smtp_cfg.port, smtp_cfg.security, smtp_cfg.username = smtp.port, "starttls", "timeaudit"
        smtp_cfg.password_file, smtp_cfg.ca_file = str(password), str(ca)
        [outcome] = deliver(kira, settings, SentLog(tmp_path / "state"))
        assert outcome.status == "sent", outcome.detail
        assert smtp.received[0].recipients == ["kira.chen@northwind-demo.com"]
        password.chmod(0o644)
        with pytest.raises(UserError, match="readable by other users"):
            deliver(kira, settings, SentLog(tmp_path / "state2"))


@pytest.mark.browser
def test_the_html_draws_with_its_charts_in_chromium(built, browser, tmp_path):
    kira = by_address(built[2])["kira.chen@northwind-demo.com"]
    parts = parts_of(kira.message)
    html = parts["html"]
    for image in parts["images"]:  # what a mail client does with cid: references
        data = base64.b64encode(image.get_content()).decode()
        html = html.replace(f"cid:{image['Content-ID'].strip('<>')}", f"data:image/png;base64,{data}")
    page = browser.new_page(viewport={"width": 800, "height": 1000})
    page.set_content(html)
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 2 and all(done and w >= 600 and h >= 300 for done, w, h in sizes)
    shot = tmp_path / "digest.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000  # the text and both charts
    if os.environ.get("TIMEAUDIT_UPDATE_DOCS") == "1":
        page.screenshot(path=str(ROOT / "docs" / "digest.png"), full_page=True)
    page.close()


assert DEMO_WEEKS >= 5  # the digest compares with last week and the four weeks before
