"""The rules page: keyword edits preview their effect live, then save to timeaudit.toml."""

from __future__ import annotations

import shutil

from streamlit.testing.v1 import AppTest

from timeaudit.core.config import load_settings, save_rules

from conftest import ROOT

APP = str(ROOT / "dashboard" / "app.py")


def test_edit_preview_and_save(demo_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    config = data / "timeaudit.toml"
    monkeypatch.setenv("TIMEAUDIT_DATA", str(data))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/rules.py").run()
    assert not at.exception and at.title[0].value == "Rules"
    assert at.metric[0].value == "0"
    assert at.button(key="save-rules").disabled
    at = at.text_input(key="kw-reports").input("status update").run()  # drop "report", "kpi", ...
    changed = int(at.metric[0].value)
    assert changed > 0
    preview = at.dataframe[0].value.set_index("Category")
    assert preview.loc["admin (reports)", "Hours with edits"] < preview.loc["admin (reports)", "Hours now"]
    at = at.button(key="save-rules").click().run()
    assert "Saved" in at.success[0].value
    saved = load_settings(config)
    assert saved.rules.admin_keywords["reports"] == ["status update"]
    assert "Written by `timeaudit demo`" in config.read_text()  # comments survive


def test_save_rules_refuses_invalid_settings(tmp_path):
    config = tmp_path / "timeaudit.toml"
    config.write_text("# mine\n[privacy]\nmin_group_size = 5\n")
    save_rules(config, {"budgets": ["budget"]}, ["board"])
    text = config.read_text()
    assert text.startswith("# mine") and "board" in text
    assert load_settings(config).rules.admin_keywords == {"budgets": ["budget"]}
