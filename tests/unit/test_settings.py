import re
from pathlib import Path

import pytest

from charter.settings import Settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_matches_settings():
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert match, "README.md has no settings table between the settings markers"
    assert match.group(1).strip() == settings_table().strip(), (
        "README.md's configuration table differs from charter/settings.py: "
        "regenerate it with `python -m charter.settings`")


def test_every_setting_has_help():
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no help text"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHARTER_DB", "sqlite:///elsewhere.db")
    monkeypatch.setenv("CHARTER_POOL_SIZE", "9")
    settings = Settings()
    assert settings.db == "sqlite:///elsewhere.db"
    assert settings.pool_size == 9


def test_default_database_is_sqlite_in_working_directory(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CHARTER_DB", raising=False)
    assert Settings().db == "sqlite:///charter.db"


def test_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHARTER_POOL_SIZE", "zero")
    with pytest.raises(ValueError, match="pool_size"):
        Settings()
