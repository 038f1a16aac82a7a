"""`tripwire config` and `tripwire migrate`, and the settings the local commands run with."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tripwire.cli.output import fail, redact_url

if TYPE_CHECKING:
    from tripwire.settings import Settings

commands = typer.Typer()

SECRETS = ("api_key", "api_auth_string")


def load_settings(home: Path | None, host: str | None = None, port: int | None = None) -> Settings:
    """The engine's settings from the environment, with the command's options on top; an
    invalid setting ends the command."""
    # Imported here: the settings bring the engine's models, which commands that only
    # talk to a running engine do not need.
    from tripwire.settings import Settings

    overrides: dict[str, Any] = {"home": home, "host": host, "port": port}
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        fail(f"invalid settings: {exc}")


@commands.command()
def config(home: Path = typer.Option(None, envvar="TRIPWIRE_HOME")) -> None:
    """Print the effective settings (secrets masked)."""
    settings = load_settings(home)
    for name, value in settings.model_dump(mode="json").items():
        if name in SECRETS and value:
            value = "********"
        elif isinstance(value, str):
            value = redact_url(value)
        typer.echo(f"{name:<24} {value}")


@commands.command()
def migrate(home: Path = typer.Option(None, envvar="TRIPWIRE_HOME")) -> None:
    """Create or upgrade the database schema."""
    from tripwire.database import create_engine
    from tripwire.database import migrate as run_migrations

    settings = load_settings(home)

    async def run() -> None:
        # Under SQLite the action ledger has a file of its own (see Settings).
        for url in dict.fromkeys([settings.resolved_database_url, settings.ledger_database_url]):
            engine = create_engine(url)
            try:
                await run_migrations(engine)
            finally:
                await engine.dispose()

    asyncio.run(run())
    typer.echo("database is at the latest schema")
