"""The settings reference (docs/settings.md) says what the settings really are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings, load_settings
from bot.settings_reference import (
    RECIPE,
    REGENERATE,
    SettingField,
    render_reference,
    setting_fields,
    toml_value,
)

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

# "Fits on one page": the everyday tables stay short; a setting beyond them is a recipe.
MOST_EVERYDAY_SETTINGS = 60


def test_the_committed_reference_is_the_generated_one() -> None:
    committed = REFERENCE.read_text(encoding="utf-8")
    assert committed == render_reference(), f"docs/settings.md is stale: run `{REGENERATE}`"


def test_every_setting_and_section_says_what_it_does() -> None:
    fields = setting_fields()
    assert len(fields) > 100
    undescribed = [f.dotted for f in fields if not (f.info.description or "").strip()]
    assert undescribed == []
    sections = {f.section for f in fields if f.section}
    assert all(Settings.model_fields[name].description for name in sections)
    # A misspelt marker would quietly make a research knob an everyday setting.
    for field in fields:
        extra = field.info.json_schema_extra
        assert extra is None or (isinstance(extra, dict) and set(extra) == {RECIPE}), field.dotted


def test_the_everyday_settings_fit_on_one_page() -> None:
    everyday = [f for f in setting_fields() if not f.recipe]
    assert 0 < len(everyday) <= MOST_EVERYDAY_SETTINGS
    assert any(f.recipe for f in setting_fields())


def test_secrets_show_no_default() -> None:
    secrets = {f.dotted for f in setting_fields() if f.secret}
    assert {"slack.bot_token", "slack.signing_secret", "generator.api_key"} <= secrets
    for line in render_reference().splitlines():
        if any(f"| `{name.split('.', 1)[1]}` |" in line for name in secrets):
            assert line.split(" | ")[3] == "—", line


def _settable(fields: list[SettingField]) -> list[tuple[SettingField, Any]]:
    """Every setting with a default one can write down (none is not), and that default."""
    pairs = [(f, f.info.get_default(call_default_factory=True)) for f in fields]
    return [(f, value) for f, value in pairs if value is not None]


def _loaded(settings: Settings, field: SettingField) -> tuple[Any, bool]:
    """The value ``settings`` holds for ``field`` and whether it was given, not defaulted."""
    holder: Any = settings
    for part in field.path[:-1]:
        holder = getattr(holder, part)
    return getattr(holder, field.path[-1]), field.path[-1] in holder.model_fields_set


def test_every_documented_key_in_the_config_file_reaches_its_setting(tmp_path: Path) -> None:
    settable = _settable(setting_fields())
    lines = [f"{f.key} = {toml_value(v)}" for f, v in settable if not f.section]
    for section in dict.fromkeys(f.section for f, _ in settable if f.section):
        lines.append(f"[{section}]")
        lines += [f"{f.key} = {toml_value(v)}" for f, v in settable if f.section == section]
    config = tmp_path / "supportbot.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    settings = load_settings(config_file=config)

    for field, default in settable:
        assert _loaded(settings, field) == (default, True), field.dotted


def test_every_documented_environment_variable_reaches_its_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settable = _settable(setting_fields())
    for field, default in settable:
        # Strings and paths are taken as they are; anything else is parsed as JSON.
        text = str(default) if isinstance(default, str | Path) else json.dumps(default)
        for name in field.env_vars:
            monkeypatch.setenv(name, text)

    settings = load_settings(config_file=tmp_path / "none.toml")

    for field, default in settable:
        assert _loaded(settings, field) == (default, True), field.dotted
