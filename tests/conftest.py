import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).parent.parent
DEMO_END = "2026-11-23"  # a fixed Monday: the demo's weeks do not move with the calendar
DEMO_WEEKS = 10


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The demo organisation (40 people, 10 weeks) generated once by the real CLI."""
    folder = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "timeaudit.cli",
            "demo",
            "--data",
            str(folder),
            "--weeks",
            str(DEMO_WEEKS),
            "--end",
            DEMO_END,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (the browser tests)."""
    from playwright.sync_api import sync_playwright
    from test_browser import require_chromium

    from timeaudit.outputs.export import CHROMIUM_FLAGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=require_chromium(), headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()
