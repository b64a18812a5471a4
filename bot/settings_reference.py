"""The settings reference (``docs/settings.md``, ``supportbot settings``), rendered from the
settings models themselves so that it cannot fall behind them.

A field declared with :func:`retrieval.config.recipe` (its ``json_schema_extra`` holds
``{"recipe": True}``) is a research knob: the reference lists it compactly under "Recipes"
at the end. Every other field is an everyday setting with a full row in its section's
table. Secrets (``SecretStr`` fields) show no default.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from bot.components import CALIBRATED_SETTINGS
from bot.settings import Settings
from bot.slack.config import STANDARD_ENVIRONMENT
from retrieval.calibration import CALIBRATION_FILE
from retrieval.config import RECIPE

# The order a new user meets the sections in: where it runs and keeps its data first, the
# channels next, then how it answers and learns. A section missing here comes last.
SECTION_ORDER = (
    "server",
    "storage",
    "web",
    "slack",
    "ops",
    "engine",
    "retrieval",
    "generator",
    "retrain",
)
REGENERATE = "supportbot settings > docs/settings.md"


@dataclass(frozen=True)
class SettingField:
    """One leaf setting: where it sits in the settings and how it is declared."""

    path: tuple[str, ...]  # ("retrieval", "tuning", "enabled"); ("home",) at the top
    info: FieldInfo

    @property
    def section(self) -> str:
        """The TOML table it is written under; "" for the top of the file."""
        return self.path[0] if len(self.path) > 1 else ""

    @property
    def key(self) -> str:
        """The key as written under its section in supportbot.toml (dotted when nested)."""
        return ".".join(self.path[1:]) if self.section else self.path[0]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def env_vars(self) -> list[str]:
        names = ["SUPPORTBOT_" + "__".join(part.upper() for part in self.path)]
        if self.section == "slack":
            names += [env for env, field in STANDARD_ENVIRONMENT.items() if field == self.key]
        return names

    @property
    def recipe(self) -> bool:
        extra = self.info.json_schema_extra
        return isinstance(extra, dict) and extra.get(RECIPE) is True

    @property
    def secret(self) -> bool:
        return SecretStr in _members(self.info.annotation)


def setting_fields(model: type[BaseModel] = Settings) -> list[SettingField]:
    """Every leaf setting of ``model``, nested models walked, in declaration order."""
    return list(_walk(model, ()))


def _walk(model: type[BaseModel], prefix: tuple[str, ...]) -> Iterator[SettingField]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, (*prefix, name))
        else:
            yield SettingField((*prefix, name), info)


def render_reference() -> str:
    """The markdown of docs/settings.md."""
    fields = sorted(setting_fields(), key=lambda f: _section_rank(f.section))
    everyday = [f for f in fields if not f.recipe]
    recipes = [f for f in fields if f.recipe]
    lines = _introduction(len(everyday), len(recipes))
    for section in dict.fromkeys(f.section for f in everyday):
        lines += _everyday_table(section, [f for f in everyday if f.section == section])
    lines += _recipes_table(recipes)
    return "\n".join(lines) + "\n"


def _section_rank(section: str) -> int:
    if not section:
        return -1
    return SECTION_ORDER.index(section) if section in SECTION_ORDER else len(SECTION_ORDER)


def _introduction(everyday: int, recipes: int) -> list[str]:
    calibrated = ", ".join(f"`engine.{name}`" for name in CALIBRATED_SETTINGS)
    return [
        "# Settings reference",
        "",
        f"<!-- Generated from the settings models by `{REGENERATE}`; do not edit. -->",
        "",
        "Every setting has a default; set only what you change. Each is read from, later"
        " winning: the defaults, `<home>/supportbot.toml` (`SUPPORTBOT_CONFIG` or `--config"
        " FILE` names another), the environment, and the command's options. A bad value"
        " stops the command with a message naming it.",
        "",
        "```toml",
        "# .supportbot/supportbot.toml",
        "[server]",
        'host = "0.0.0.0"',
        "",
        "[retrieval]",
        "top_k = 8",
        "tuning.enabled = false",
        "```",
        "",
        "In the environment a setting is `SUPPORTBOT_<SECTION>__<KEY>`, nested keys joined by"
        " `__` too: `SUPPORTBOT_RETRIEVAL__TOP_K=8`, `SUPPORTBOT_RETRIEVAL__TUNING__ENABLED="
        "false`; a list is written as JSON (`SUPPORTBOT_WEB__ALLOWED_ORIGINS='"
        '["https://shop.example"]\'`). Unset means leave the key out.',
        "",
        f"The {everyday} everyday settings come first, by section; the {recipes} research"
        " knobs (model training, index and batching parameters, ranking bonuses, confidence"
        " weights, hardening limits) are listed at the end, under"
        " [Recipes](#recipes-research-knobs). Their defaults were measured on the sample"
        " data and the benchmarks; change one when a recipe or a benchmark of your own says"
        " so.",
        "",
        f"**Fitted confidence.** {calibrated} are normally fitted by `supportbot calibrate`"
        f" or `supportbot train` into `<home>/indexes/{CALIBRATION_FILE}` for the embedder in"
        " use; the defaults below apply only until then. A value set in the settings (file"
        " or environment) overrides the fitted one.",
        "",
    ]


def _everyday_table(section: str, fields: list[SettingField]) -> list[str]:
    if section:
        heading = f"## [{section}]"
        about = Settings.model_fields[section].description or ""
    else:
        heading, about = "## Top of the file", "Settings outside any section."
    lines = [heading, "", about, ""] if about else [heading, ""]
    lines += [
        "| Key | Environment | Type | Default | Description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for field in fields:
        env = "<br>".join(f"`{name}`" for name in field.env_vars)
        lines.append(
            f"| `{field.key}` | {env} | {type_text(field.info)} | {default_text(field)}"
            f" | {_cell(field.info.description or '')} |"
        )
    return [*lines, ""]


def _recipes_table(fields: list[SettingField]) -> list[str]:
    lines = [
        "## Recipes: research knobs",
        "",
        "Written as `section.key` (`retrieval.hnsw_m` is `hnsw_m` under `[retrieval]`,"
        " `SUPPORTBOT_RETRIEVAL__HNSW_M` in the environment).",
        "",
        "| Setting | Default | Description |",
        "| --- | --- | --- |",
    ]
    for field in fields:
        lines.append(
            f"| `{field.dotted}` | {default_text(field)} | {_cell(field.info.description or '')} |"
        )
    return lines


def type_text(info: FieldInfo) -> str:
    """The value a setting takes, in TOML's words, with its bounds."""
    kinds = [t for t in _members(info.annotation) if t is not type(None)]
    words = " or ".join(_kind(kind) for kind in kinds)
    bounds = _bounds(info.metadata)
    return f"{words}, {bounds}" if bounds else words


def _members(annotation: Any) -> list[Any]:
    """The types of a union (``int | None`` -> [int, NoneType]); a lone type itself."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return list(typing.get_args(annotation))
    return [annotation]


def _kind(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f'`"{value}"`' for value in typing.get_args(annotation))
    if origin in (list, tuple):
        return "array of strings"
    known = {bool: "boolean", int: "integer", float: "float", str: "string", Path: "path"}
    if annotation is SecretStr:
        return "string (secret)"
    return known.get(annotation, str(annotation))


def _bounds(metadata: list[Any]) -> str:
    low = high = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"≥ {_number(item.ge)}"
        elif isinstance(item, annotated_types.Gt):
            low = f"> {_number(item.gt)}"
        elif isinstance(item, annotated_types.Le):
            high = f"≤ {_number(item.le)}"
        elif isinstance(item, annotated_types.Lt):
            high = f"< {_number(item.lt)}"
    if low.startswith("≥") and high.startswith("≤"):
        return f"{low[2:]} to {high[2:]}"
    return ", ".join(part for part in (low, high) if part)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def default_text(field: SettingField) -> str:
    """The default as written in supportbot.toml; "unset" for none, "—" for a secret."""
    if field.secret:
        return "—"
    value = field.info.get_default(call_default_factory=True)
    return "unset" if value is None else f"`{_cell(toml_value(value))}`"


def toml_value(value: Any) -> str:
    """``value`` as written in a TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cell(text: str) -> str:
    """``text`` safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
