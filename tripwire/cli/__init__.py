"""The `tripwire` command: one module per subject, assembled here.

Every module below is imported for every command, so each keeps its top-level imports
light (typer, the standard library, tripwire-client): the engine, its database drivers, the
bus and the definition models are imported inside the commands that need them (up, serve,
migrate, test, validate, apply). tests/tripwire/test_cli_imports.py keeps it so.
"""

from __future__ import annotations

import typer

from tripwire.cli import (
    actions,
    alerts,
    apply,
    automations,
    config,
    definitions,
    events,
    explain,
    replay,
    roles,
    silence,
    sla,
    webhooks,
)

__all__ = ["app", "main"]

app = typer.Typer(help="tripwire: an automations engine for data platforms.", no_args_is_help=True)
# Commands first, then the groups of subcommands, as `tripwire --help` lists them.
for commands in (
    roles.commands,  # up
    events.commands,  # emit
    definitions.commands,  # validate
    apply.commands,
    explain.commands,
    replay.commands,  # test
    config.commands,  # config, migrate
):
    app.add_typer(commands)
app.add_typer(events.events_app, name="events")
app.add_typer(roles.serve_app, name="serve")
app.add_typer(automations.automations_app, name="automations")
app.add_typer(actions.actions_app, name="actions")
app.add_typer(sla.sla_app, name="sla")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(silence.silence_app, name="silence")
app.add_typer(webhooks.webhooks_app, name="webhooks")


def main() -> None:
    """Entry point of the `tripwire` script."""
    app(prog_name="tripwire")
