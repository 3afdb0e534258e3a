"""Weekly summaries in every format, read back with real readers, on the demo organisation."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import openpyxl
import pytest
from pypdf import PdfReader

from timeaudit.analysis.metrics import customer_share
from timeaudit.core.config import load_settings, parse_settings
from timeaudit.core.model import Person
from timeaudit.core.roster import write_roster
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import weekly_metrics
from timeaudit.outputs.export import _hidden_note, render, to_csv, to_html, to_xlsx
from timeaudit.outputs.summary import build_summary

from records import event, utc

WEEK = "2026-W47"
SCOPES = {"person": {}, "team": {"team": "Support"}, "organisation": {}}


@pytest.fixture(scope="module")
def demo(demo_dir):
    lake, settings = Lake(demo_dir), load_settings(demo_dir / "timeaudit.toml")
    return lake, settings, weekly_metrics(lake, settings)


def expected_share(weekly, scope: str) -> tuple[float, str]:
    week = weekly[weekly["week"] == WEEK]
    if scope == "person":
        person = sorted(week["person"])[0]
        rows = week[week["person"] == person]
        return float(customer_share(rows.sum(numeric_only=True).to_frame().T).iloc[0]), person
    rows = week[week["team"] == "Support"] if scope == "team" else week
    return float(customer_share(rows.sum(numeric_only=True).to_frame().T).iloc[0]), ""


def summary_for(demo, scope):
    lake, settings, weekly = demo
    share, person = expected_share(weekly, scope)
    kwargs = {"person": person} if scope == "person" else SCOPES[scope]
    return build_summary(lake, settings, WEEK, metrics=weekly, **kwargs), share


@pytest.mark.parametrize("scope", SCOPES)
def test_csv_rows_are_the_metrics(demo, scope):
    summary, share = summary_for(demo, scope)
    rows = list(csv.DictReader(io.StringIO(to_csv(summary).decode())))
    assert rows and all(r["week"] == WEEK for r in rows)
    assert "customer_meeting_hours" in rows[0] and "customer_share" in rows[0]
    _, _, weekly = demo
    if scope == "person":
        assert float(rows[0]["customer_share"]) == pytest.approx(share, abs=0.001)
    if scope == "organisation":
        assert {r["team"] for r in rows} == set(weekly["team"])
        total = sum(float(r["capacity_hours"]) for r in rows)
        assert total == pytest.approx(weekly.loc[weekly["week"] == WEEK, "capacity_hours"].sum(), abs=0.1)


@pytest.mark.parametrize("scope", SCOPES)
def test_xlsx_is_typed_frozen_and_charted(demo, scope, tmp_path):
    summary, share = summary_for(demo, scope)
    path = tmp_path / "s.xlsx"
    path.write_bytes(to_xlsx(summary))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [
        "Summary",
        "Weekly split",
        "Figures",
        "Top wasters",
        "Suggestions",
        "Reply-all storms",
        "Neglected customers",
        "Waiting for an answer",
        "Admin by kind",
        "Definitions",
    ]
    assert book["Top wasters"].cell(1, 1).value == "Meeting"
    if scope == "organisation":
        assert book["Top wasters"].cell(2, 1).value == "steering, committee"
    head = book["Summary"]
    assert head.freeze_panes == "A2"
    values = {head.cell(r, 1).value: head.cell(r, 2).value for r in range(2, head.max_row + 1)}
    assert isinstance(values["Customer share"], float)
    assert values["Customer share"] == pytest.approx(share, abs=1e-6)
    split = book["Weekly split"]
    assert split.cell(split.max_row, 1).value == WEEK
    assert isinstance(split.cell(2, 2).value, (int, float))
    assert len(split._charts) == 1
    assert book["Summary"].column_dimensions["A"].width >= len("Previous 4 weeks")


class TextAndScripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http://", "https://", "//")):
                self.external.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("scope", SCOPES)
def test_html_is_self_contained_with_the_headline(demo, scope):
    summary, share = summary_for(demo, scope)
    parser = TextAndScripts()
    parser.feed(to_html(summary).decode())
    text = " ".join(parser.text)
    assert f"{share:.0%}" in text
    assert "Definitions" in text and "Customer share" in text
    assert parser.external == []  # opens with no network


@pytest.mark.parametrize("scope", SCOPES)
def test_markdown_holds_the_headline(demo, scope):
    summary, share = summary_for(demo, scope)
    text = render(summary, "md").decode()
    assert text.startswith("# timeaudit weekly summary")
    headings = ["## Top wasters", "## Suggestions", "## Reply-all storms", "## Neglected customers"]
    for heading in [*headings, "## Waiting for an answer", "## Admin by kind"]:
        assert heading in text
    assert f"| Customer share | {share:.0%} |" in text


def test_pdf_pages_render_and_are_not_blank(demo, tmp_path):
    if not shutil.which("chromium"):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium missing on CI")
        pytest.skip("chromium is not installed: PDF export needs it")
    summary, share = summary_for(demo, "team")
    pdf = tmp_path / "s.pdf"
    pdf.write_bytes(render(summary, "pdf"))
    reader = PdfReader(pdf)
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Customer share" in text and f"{share:.0%}" in text
    fonts = reader.pages[0]["/Resources"]["/Font"]
    # Embedded font subsets carry a six-letter tag: "AAAAAA+DejaVuSans".
    assert fonts and all("+" in str(f.get_object()["/BaseFont"]) for f in fonts.values())
    if not shutil.which("pdftoppm"):
        if os.environ.get("CI") == "true":
            pytest.fail("pdftoppm missing on CI: .ci/run installs poppler-utils")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    from PIL import Image

    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    for png in pages[:2]:
        colours = Image.open(png).convert("L").getextrema()
        assert colours[0] < 200, f"{png.name} looks blank"


def test_formulas_are_neutralised_and_names_escaped(tmp_path):
    team = '=HYPERLINK("http://x")<script>'
    people = [Person(f"p{i}@n.com", team) for i in range(5)]
    write_roster(tmp_path / "people.csv", people)
    settings = parse_settings({"roster": str(tmp_path / "people.csv"), "organisation": {"domains": ["n.com"]}})
    lake = Lake(tmp_path / "data")
    lake.write_batch(
        "events",
        "test",
        [event(p.email, utc(2026, 11, 17, 10), utc(2026, 11, 17, 11), with_=["x@n.com"]) for p in people],
    )
    summary = build_summary(lake, settings, WEEK, team=team)
    rows = list(csv.DictReader(io.StringIO(to_csv(summary).decode())))
    assert rows[0]["team"].startswith("'=")
    (tmp_path / "s.xlsx").write_bytes(to_xlsx(summary))
    figures = openpyxl.load_workbook(tmp_path / "s.xlsx")["Figures"]
    assert figures.cell(2, 3).value.startswith("'=")
    assert "<script>" not in to_html(summary).decode().split("<body>")[1].split('<div class="chart">')[0]


def test_small_team_is_not_exported(tmp_path):
    people = [Person(f"p{i}@n.com", "Tiny") for i in range(3)]
    write_roster(tmp_path / "people.csv", people)
    settings = parse_settings({"roster": str(tmp_path / "people.csv")})
    lake = Lake(tmp_path / "data")
    lake.write_batch("events", "test", [event(people[0].email, utc(2026, 11, 17, 10), utc(2026, 11, 17, 11))])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "timeaudit.cli",
            "report",
            "--week",
            WEEK,
            "--team",
            "Tiny",
            "--data",
            str(tmp_path / "data"),
            "--config",
            str(_write(tmp_path, settings)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "fewer than privacy.min_group_size" in result.stderr


def _write(tmp_path, settings):
    path = tmp_path / "timeaudit.toml"
    path.write_text(f'roster = "{settings.roster}"\n')
    return path


def test_cli_writes_each_format_atomically(demo_dir, tmp_path):
    for fmt in ("csv", "xlsx", "md", "html"):
        out = tmp_path / f"summary.{fmt}"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "timeaudit.cli",
                "report",
                "--week",
                WEEK,
                "--team",
                "Sales",
                "--output",
                str(out),
                "--data",
                str(demo_dir),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert out.stat().st_size > 100
        assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "md", "html", "pdf"])
def test_teams_under_the_minimum_group_size_have_no_figures_in_any_format(demo, fmt, tmp_path):
    lake, settings, weekly = demo
    strict = settings.model_copy(update={"privacy": settings.privacy.model_copy(update={"min_group_size": 9})})
    summary = build_summary(lake, strict, WEEK, metrics=weekly)
    assert set(summary.hidden_teams) == {"Engineering", "Finance", "Operations", "Sales"}
    assert summary.pool == "Other teams (4)"  # counted together, never on their own
    data = render(summary, fmt)
    if fmt == "csv":
        assert {r["team"] for r in csv.DictReader(io.StringIO(data.decode()))} == {"Support", summary.pool}
        return
    if fmt == "xlsx":
        (tmp_path / "s.xlsx").write_bytes(data)
        sheet = openpyxl.load_workbook(tmp_path / "s.xlsx")["Figures"]
        header = [c.value for c in sheet[1]]
        teams = {row[header.index("team")] for row in sheet.iter_rows(min_row=2, values_only=True)}
        assert teams == {"Support", summary.pool}
        return
    if fmt == "pdf":
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    else:  # the HTML's inlined plotly.js has words of its own ("_getOperationsToPerform")
        text = re.sub(r"<script.*?</script>", "", data.decode(), flags=re.S)
        assert not [t for t in summary.hidden_teams if f'"{t}"' in data.decode()]  # nor in the charts' data
    # A hidden team is named only in the note saying why it is hidden, never with figures.
    flat = " ".join(text.split())
    note = " ".join(" ".join(_hidden_note(summary)).split())
    assert note and note in flat.replace("**", "")
    rest = flat.replace("**", "").replace(note, "")
    assert not [team for team in summary.hidden_teams if team in rest]


LINKS = {  # team names a hostile roster could hold, each of which a reader could turn into a link or markup
    "https://evil.example/login": "a web address",
    "ftp://evil.example/x": "an ftp address",
    "mailto:boss@evil.example": "a mail link",
    "[x](javascript:alert(1))": "a script link",
    "[x](https://evil.example)": "a Markdown link",
    "<img src=x onerror=alert(1)>": "raw HTML",
    "![i](https://evil.example/t.png)": "a Markdown image",
}


def linked_summary(tmp_path, team: str):
    people = [Person(f"p{i}@n.com", team) for i in range(5)]
    write_roster(tmp_path / "people.csv", people)
    settings = parse_settings({"roster": str(tmp_path / "people.csv"), "organisation": {"domains": ["n.com"]}})
    lake = Lake(tmp_path / "data")
    start, end = utc(2026, 11, 17, 10), utc(2026, 11, 17, 11)
    lake.write_batch("events", "test", [event(p.email, start, end, with_=["x@n.com"]) for p in people])
    return build_summary(lake, settings, WEEK, team=team)


@pytest.mark.parametrize("team", LINKS, ids=list(LINKS.values()))
def test_text_cells_stay_text_in_every_format(tmp_path, team):
    from markdown_it import MarkdownIt

    summary = linked_summary(tmp_path, team)
    (tmp_path / "s.xlsx").write_bytes(to_xlsx(summary))
    book = openpyxl.load_workbook(tmp_path / "s.xlsx")
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row]
    assert any(c.value == team for c in cells), "the name is there, as text"
    assert not [c.coordinate for c in cells if c.hyperlink], "and nothing is a link"

    page = MarkdownIt("commonmark").render(render(summary, "md").decode())
    assert team in page.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    assert "<a " not in page and "<img" not in page, "no link, image or HTML made of it"
    assert "](" not in render(summary, "md").decode().replace("\\]", ""), "nor by a renderer allowing any scheme"

    html_page = re.sub(r"<script.*?</script>", "", to_html(summary).decode(), flags=re.S)
    assert "<a " not in html_page and "<img" not in html_page
