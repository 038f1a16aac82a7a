"""Settings, read once at start-up from TRIPWIRE_* environment variables.

settings = Settings()                      # from the environment
settings = Settings(home=Path("/data"))    # overrides win over the environment
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from actions.prefect_api import PrefectConnection
from events.durations import Duration


class Settings(BaseSettings):
    """Every setting of the engine; the docs' settings reference is generated from these
    fields and their descriptions."""

    model_config = SettingsConfigDict(env_prefix="TRIPWIRE_", extra="ignore")

    home: Path = Field(
        default=Path(".tripwire"),
        description="Data folder: the SQLite files and the embedded nats-server's store.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=4280, description="Port the API listens on.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset = SQLite in home. postgresql://... uses asyncpg. "
        "Under SQLite the action ledger is a second file beside it (tripwire-actions.db).",
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS server(s), comma-separated for a cluster; unset = an embedded "
        "nats-server.",
    )
    nats_port: int | None = Field(
        default=None, description="Port of the embedded nats-server; default free."
    )
    namespace: str = Field(
        default="tripwire",
        description="Prefix of stream (TRIPWIRE_EVENTS), subject and consumer names; letters, "
        "digits, '-' and '_'.",
    )
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="JetStream replicas per stream (3 on a 3-node cluster)."
    )
    stream_max_age: Duration = Field(
        default=timedelta(days=7), description="How long streams keep messages."
    )
    stream_max_bytes: int = Field(
        default=-1, description="Size cap per stream in bytes, oldest dropped first; -1 = none."
    )
    duplicate_window: Duration = Field(
        default=timedelta(minutes=10),
        description="JetStream drops a message whose id (the event id) it saw this recently; "
        "the store drops older copies.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Require 'Authorization: Bearer <key>' on every route but /api/health "
        "and /metrics.",
    )
    api_auth_string: SecretStr | None = Field(
        default=None,
        description="Require Basic auth 'user:pass' on every route but /api/health and /metrics.",
    )
    api_read_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys that may read but not change: 'Authorization: "
        "Bearer <key>' on any GET of the API, and a dashboard login that can look but not "
        "pause, retry or replay. Needs api_key or api_auth_string for changes.",
    )
    event_retention: Duration = Field(
        default=timedelta(days=7),
        description="Stored events older than this are swept, with their related rows.",
    )
    alert_retention: Duration = Field(
        default=timedelta(days=30),
        description="Resolved alerts older than this are forgotten, with their firings.",
    )
    retention_sweep_every: Duration = Field(
        default=timedelta(minutes=10), description="How often the worker sweeps old events."
    )
    # A backlog drains ~25% faster in batches of 2,000 than of 500 (windows shared by
    # more events, fewer statements per event); a steady flow makes smaller batches anyway.
    store_batch_size: int = Field(
        default=2000,
        ge=1,
        description="Most events per store transaction: a backlog drains in batches this "
        "big; a steady flow makes smaller ones.",
    )
    partitions: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Partitions of the events stream by resource id, for several workers: "
        "each partition is stored by one worker at a time, so a key's windows are only "
        "touched by one. The same on every process; 1 = all workers share one consumer.",
    )
    max_cascade_depth: int = Field(
        default=5,
        ge=1,
        description="Longest chain of automations firing each other before it is stopped.",
    )
    decisions_per_automation: int = Field(
        default=500, ge=10, description="Decision traces kept per automation."
    )
    decisions_per_batch: int = Field(
        default=1,
        ge=1,
        description="Non-firing decisions recorded per automation per batch of events.",
    )
    decisions_per_second: int = Field(
        default=5,
        ge=1,
        description=(
            "Non-firing decisions recorded per automation per second, over all batches "
            "(firings are always recorded)."
        ),
    )
    automations_poll: Duration = Field(
        default=timedelta(milliseconds=500),
        description="How often workers check for changed automations.",
    )
    action_concurrency: int = Field(
        default=64, ge=1, description="Actions one worker runs at once."
    )
    action_retries: int = Field(
        default=3, ge=0, description="Attempts after the first, for actions that set none."
    )
    action_retry_delay: Duration = Field(
        default=timedelta(seconds=2),
        description="First retry delay (doubles per attempt, with jitter).",
    )
    action_max_retry_delay: Duration = Field(
        default=timedelta(minutes=10), description="Longest delay between two attempts."
    )
    action_timeout: Duration = Field(
        default=timedelta(seconds=30),
        description="Time limit of one attempt of an action; a worker's claim on the action "
        "lapses 5 s after it.",
    )
    allow_private_urls: bool = Field(
        default=False,
        description="Let automations call private and loopback addresses (SSRF guard off).",
    )
    secrets_file: Path | None = Field(
        default=None, description="NAME=value file read by {{ secret('NAME') }}, before env."
    )
    prefect_api_url: str | None = Field(
        default=None, description="Prefect API for Prefect actions, e.g. http://host:4200/api."
    )
    prefect_api_key: SecretStr | None = Field(
        default=None, description="Prefect Cloud API key (sent as Bearer)."
    )
    prefect_api_auth_string: SecretStr | None = Field(
        default=None, description="Self-hosted Prefect basic auth 'user:pass'."
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="The Prefect UI that templates' ui_url filters link to; default: derived "
        "from prefect_api_url as Prefect does (without /api; app.prefect.cloud on Cloud).",
    )
    prefect_connections: dict[str, PrefectConnection] = Field(
        default_factory=dict,
        description="More Prefect servers by name, as JSON: "
        '{"staging": {"api_url": "...", "api_key": "..."}}; actions pick one with connection:.',
    )
    prefect_block_cache_ttl: Duration = Field(
        default=timedelta(seconds=60),
        ge=timedelta(0),
        description="How long a worker keeps a Prefect block it read for send-notification or "
        "call-webhook (block_document_id), so a burst of firings reads it once; 0 = every time.",
    )
    prefect_follow: bool = Field(
        default=False,
        description="Follow the event stream of the Prefect server at prefect_api_url "
        "(api role) and republish its events onto the bus.",
    )
    prefect_follow_events: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Event names to follow, comma-separated globs (prefect.flow-run.*); "
        "empty = all.",
    )
    log_level: str = Field(
        default="INFO", description="Python logging level (DEBUG, INFO, WARNING, ...)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text, or json: one JSON object per line (time in UTC, level, logger, "
        "message, exception).",
    )

    @field_validator("prefect_follow_events", mode="before")
    @classmethod
    def _globs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [glob.strip() for glob in value.split(",") if glob.strip()]
        return value

    @field_validator("api_read_keys", mode="before")
    @classmethod
    def _read_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="after")
    def _read_keys_need_a_writer(self) -> Settings:
        if self.api_read_keys and not (self.api_key or self.api_auth_string):
            raise ValueError(
                "TRIPWIRE_API_READ_KEYS needs TRIPWIRE_API_KEY or TRIPWIRE_API_AUTH_STRING: "
                "without one, the API is open to anyone and read-only keys restrict nothing"
            )
        return self

    @model_validator(mode="after")
    def _follow_needs_url(self) -> Settings:
        if self.prefect_follow and not self.prefect_api_url:
            raise ValueError(
                "TRIPWIRE_PREFECT_FOLLOW needs TRIPWIRE_PREFECT_API_URL "
                "(the Prefect API root, e.g. http://127.0.0.1:4200/api)"
            )
        return self

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("use letters, digits, '-' and '_' only")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data folder."""
        return self.database_url or f"sqlite+aiosqlite:///{(self.home / 'tripwire.db').resolve()}"

    @property
    def ledger_database_url(self) -> str:
        """Where the action ledger lives: the same database on PostgreSQL; under SQLite a
        file of its own beside the main one (`tripwire.db` → `tripwire-actions.db`), so
        that dispatching an action never waits for the event store's write lock."""
        url = self.resolved_database_url
        if not url.startswith("sqlite") or url.endswith(":memory:"):
            return url
        base, _, path = url.partition(":///")
        file = PurePosixPath(path)  # a dot in a folder name is not a suffix
        return f"{base}:///{file.with_stem(file.stem + '-actions')}"

    @property
    def nats_store_dir(self) -> Path:
        """Where the embedded nats-server keeps JetStream data."""
        return self.home / "nats"

    @property
    def api_url(self) -> str:
        """The address the API answers on."""
        return f"http://{self.host}:{self.port}"
