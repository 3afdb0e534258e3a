"""The perimeter in a real headless Chromium: sign-in through a real OpenID Connect provider on
loopback (oidc-provider-mock) fails closed, and download addresses serve nobody who has not
signed in."""

from __future__ import annotations

import contextlib
import csv
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from test_browser import free_port, serve_dashboard

pytestmark = pytest.mark.browser
SECRET = "a-long-random-string-for-the-test-only"


@contextlib.contextmanager
def signed_in_dashboard(demo_dir, tmp_path, users) -> Iterator[str]:
    """`timeaudit dashboard --secrets` on loopback, signing in through a provider that knows ``users``."""
    from oidc_provider_mock import run_server_in_thread

    port = free_port()
    with run_server_in_thread(user_claims=users) as idp:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{SECRET}"\n'
            'client_id = "timeaudit"\nclient_secret = "timeaudit-test"\n'
            f'server_metadata_url = "http://localhost:{idp.server_port}/.well-known/openid-configuration"\n'
        )
        secrets.chmod(0o600)
        with serve_dashboard(demo_dir, port=port, extra=["--secrets", str(secrets)]) as url:
            yield url


def sign_in(page, url: str, sub: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Sign in").click()
    page.locator('input[name="sub"]').fill(sub)
    page.get_by_role("button", name="Authorize").click()


def fetch(url: str, cookie: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_an_identity_without_an_email_claim_sees_only_the_refusal(browser, demo_dir, tmp_path):
    from oidc_provider_mock import User

    with signed_in_dashboard(demo_dir, tmp_path, [User(sub="no-email", claims={"name": "No Email"})]) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        sign_in(page, url, "no-email")
        for path in ("", "/team", "/wasters", "/customers", "/rules", "/data", "/?person=x@northwind-demo.com"):
            if path:
                page.goto(url + path, wait_until="domcontentloaded")
            page.get_by_role("heading", name="Sign-in refused").wait_for(timeout=60_000)
            page.get_by_text("gave no email address").wait_for(timeout=30_000)
            page.wait_for_timeout(500)
            body = page.inner_text("body")
            assert "Local mode" not in body and "Customer share" not in body and "Keyword rules" not in body
            assert page.locator(".js-plotly-plot").count() == 0
            assert page.locator('[data-testid="stSidebarNav"]').count() == 0
            assert page.locator('[data-testid="stException"]').count() == 0
        page.close()


def test_a_download_address_serves_only_a_signed_in_session(browser, demo_dir, tmp_path):
    from oidc_provider_mock import User
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    people = list(csv.DictReader((demo_dir / "people.csv").open(newline="")))
    member = next(r["email"] for r in people if r["role"] == "member" and r["team"] == "Sales")
    with signed_in_dashboard(demo_dir, tmp_path, [User(sub=member, claims={"email": member})]) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        page = context.new_page()
        sign_in(page, url, member)
        page.get_by_text(f"Signed in as {member}").wait_for(timeout=60_000)
        page.goto(f"{url}/team", wait_until="domcontentloaded")
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Prepare the weekly summary for download").click()
        button = page.get_by_role("button", name="Summary .md")
        button.wait_for(timeout=60_000)
        with page.expect_download(timeout=120_000) as download:
            button.click()
        target = tmp_path / "summary.md"
        download.value.save_as(target)
        assert target.read_bytes().startswith(b"# timeaudit weekly summary"), "the signed-in browser gets it"
        media = download.value.url
        assert "/media/" in media

        cookies = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        assert fetch(media, cookies) == 200, "the same session's cookies, outside the browser"
        assert fetch(media) == 403, "a fresh client without cookies"
        forged = create_signed_value("another-secret", "_streamlit_user", f'{{"email": "{member}"}}').decode()
        assert fetch(media, f"_streamlit_user={forged}") == 403, "a cookie not signed with the cookie_secret"
        context.close()
