"""The settings reference, from the settings model: every TRIPWIRE_* variable, its type,
default and meaning."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic.fields import FieldInfo

from tripwire.settings import Settings

from .schema import cell, default_text, type_text

INTRO = """\
# Settings

Every setting comes from the environment, with the `TRIPWIRE_` prefix. `tripwire config`
prints the values in effect, with secrets masked. Durations take `90`, `90s`, `10m`, `2h`
or `7d`, up to 100 years.

This page is generated from the settings model.

| variable | type | default | meaning |
|---|---|---|---|
"""


def page() -> str:
    """The whole page as Markdown."""
    return INTRO + "\n".join(_rows()) + "\n"


def _rows() -> Iterator[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    properties = Settings.model_json_schema(mode="validation")["properties"]
    for name, field in Settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        kind = (
            "secret"
            if "password" in str(properties[name])
            else type_text(properties[name], link=False)
        )
        yield (
            f"| `{variable}` | {cell(kind)} | {_default(field)} | {cell(field.description or '')} |"
        )


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    return "unset" if value is None else default_text(value)
