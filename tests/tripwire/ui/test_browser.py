"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against real
engines (nats-server, SQLite) serving in this module's event loop.

Each page shows what it should after a day of flow runs, firings, SLA misses and failed
actions; the pause toggle pauses; an event emitted after the events page loaded appears on
it; text from events and definitions never runs as script; sign-in with the API key and
with a read-only key. With TRIPWIRE_SCREENSHOTS=<folder> (docs/images/dashboard), the page
tests also save a full-page screenshot of each page, 1280 px wide, for the docs.

Without Chromium (/usr/bin/chromium, or `chromium` on PATH) the tests are skipped, and fail
in CI, where .ci/run installs it. Playwright's own browser download is not used.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from events import clock
from events.embedded import EmbeddedNats, free_port
from tests.support import Running, eventually, serve
from tripwire.engine import Engine, Role
from tripwire.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers' /dev/shm is often 64 MB: full pages crash it
]
WIDTH = 1280  # every page's width, and the screenshots'
WAIT_MS = 15_000  # how long the browser may take to show something: a bound, not a pause

expect.set_options(timeout=WAIT_MS)


# Engines in the module's loop ----------------------------------------------------------


class Engines:
    """Engines serving HTTP in this module's event loop, stopped when the module is done
    (tests/conftest.py's start_engine serves one test only)."""

    def __init__(self, root: Path, nats: EmbeddedNats) -> None:
        self.root = root
        self.nats = nats
        self.started: list[Running] = []

    async def start(self, name: str, **overrides: Any) -> Running:
        values: dict[str, Any] = {
            "home": self.root / name,
            "nats_url": self.nats.url,
            "namespace": f"t{uuid.uuid4().hex[:10]}",
            "port": free_port(),
        }
        settings = Settings(**{**values, **overrides})
        running = await serve(Engine(settings, frozenset(Role)), f"{name} engine")
        self.started.append(running)
        return running

    async def stop(self) -> None:
        for running in reversed(self.started):
            if not running.task.done():
                await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engines(
    tmp_path_factory: pytest.TempPathFactory, nats_server: EmbeddedNats
) -> AsyncIterator[Engines]:
    started = Engines(tmp_path_factory.mktemp("engines"), nats_server)
    yield started
    await started.stop()


# The browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """Debian's Chromium; missing = skipped locally, a failure in CI. Autouse, so a
    missing browser is found before any engine starts."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        reason = (
            f"no Chromium at {CHROMIUM} or on PATH (apt-get install chromium): the "
            "dashboard's browser tests need it"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """One Chromium for the module; each test opens contexts of its own (cookies)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with the script errors it met."""

    page: Page
    errors: list[str] = field(default_factory=list)


async def open_tab(browser: Browser, scheme: str = "light") -> Tab:
    context = await browser.new_context(
        viewport={"width": WIDTH, "height": 900},
        color_scheme="dark" if scheme == "dark" else "light",
        locale="en-GB",
        timezone_id="UTC",
    )
    context.set_default_timeout(WAIT_MS)
    tab = Tab(await context.new_page())
    tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
    return tab


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page 1280 px wide in the light scheme, in a context of its own; the dashboard's
    script may not throw on it."""
    tab = await open_tab(browser)
    yield tab.page
    await tab.page.context.close()
    assert tab.errors == [], "script errors on the page"


async def shoot(page: Page, name: str) -> None:
    """With TRIPWIRE_SCREENSHOTS set to a folder, a full-page PNG of the page as it is."""
    folder = os.environ.get("TRIPWIRE_SCREENSHOTS")
    if not folder:
        return
    await asyncio.to_thread(Path(folder).mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def row(page: Page, text: str) -> Locator:
    """The table row holding `text` (a link's or a cell's)."""
    return page.locator("tbody tr").filter(has_text=text)


async def figure(page: Page, label: str) -> str:
    """The value of the overview's figure with `label`."""
    return await page.locator(".figure", has_text=label).locator(".value").inner_text()


# A day of a data platform --------------------------------------------------------------

FLOWS = ["etl-orders", "etl-sales", "etl-customers", "etl-inventory"]
RUN_NAMES = [
    "amber-heron", "brisk-otter", "calm-falcon", "dapper-lynx", "eager-puffin",
    "fuzzy-marmot", "gentle-ibis", "hidden-newt", "ivory-bison", "jolly-tapir",
    "keen-badger", "lively-gecko", "mellow-crane", "nimble-stoat", "odd-walrus",
]  # fmt: skip
SLACK = "{{ secret('SLACK_WEBHOOK_URL') }}"
FLOW_RUN = {"prefect.resource.id": "prefect.flow-run.*"}
GITHUB_SECRET = "gh-webhook-secret-for-the-board"


def of_flow(name: str) -> dict[str, str]:
    return {"prefect.resource.role": "flow", "prefect.resource.name": name}


def automations(pager: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "etl-flow-keeps-failing",
            "description": "An etl-* flow failed 3 times within 10 minutes (counted per flow)",
            "tags": ["etl", "on-call"],
            "trigger": {
                "type": "event",
                "match": FLOW_RUN,
                "match_related": of_flow("etl-*"),
                "expect": ["prefect.flow-run.Failed"],
                "where": "payload.validated_state.type == 'FAILED'",
                "for_each": ["related:flow:prefect.resource.name"],
                "posture": "Reactive",
                "threshold": 3,
                "within": "10m",
            },
            "actions": [
                {
                    "type": "send-slack",
                    "webhook_url": SLACK,
                    "text": "{{ event.related[0]['prefect.resource.name'] }} failed 3 times",
                }
            ],
        },
        {
            "name": "etl-run-not-completed",
            "description": "A run of an etl-* flow did not finish within an hour of starting",
            "tags": ["etl"],
            "trigger": {
                "type": "event",
                "match": FLOW_RUN,
                "match_related": of_flow("etl-*"),
                "after": ["prefect.flow-run.Running"],
                "expect": ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
                "for_each": ["prefect.resource.id"],
                "posture": "Proactive",
                "threshold": 1,
                "within": "1h",
            },
            "actions": [
                {
                    "type": "send-slack",
                    "webhook_url": SLACK,
                    "text": "{{ event.resource['prefect.resource.name'] }} is still running",
                }
            ],
        },
        {
            "name": "nightly-etls-done",
            "description": "etl-orders and etl-sales both completed within 2 hours",
            "trigger": {
                "type": "compound",
                "require": "all",
                "within": "2h",
                "triggers": [
                    {
                        "type": "event",
                        "match": FLOW_RUN,
                        "match_related": of_flow(flow),
                        "expect": ["prefect.flow-run.Completed"],
                    }
                    for flow in ("etl-orders", "etl-sales")
                ],
            },
            "actions": [
                {
                    "type": "emit-event",
                    "event": "ops.etls.done",
                    "resource": {"prefect.resource.id": "ops.nightly-etls"},
                }
            ],
        },
        {
            "name": "sales-model-refreshed-after-etl",
            "description": "etl-sales completed, then dbt refreshed the sales model",
            "tags": ["dbt"],
            "trigger": {
                "type": "sequence",
                "within": "30m",
                "triggers": [
                    {
                        "type": "event",
                        "match": FLOW_RUN,
                        "match_related": of_flow("etl-sales"),
                        "expect": ["prefect.flow-run.Completed"],
                    },
                    {
                        "type": "event",
                        "match": {"prefect.resource.id": "dbt.model.sales"},
                        "expect": ["dbt.model.refreshed"],
                        "where": "payload.rows > `0`",
                    },
                ],
            },
            "actions": [{"type": "do-nothing"}],
        },
        {
            "name": "warehouse-load-failed",
            "description": "A failed warehouse load pages the data on-call",
            "tags": ["warehouse", "on-call"],
            "trigger": {
                "type": "event",
                "match": {"prefect.resource.id": "warehouse.table.*"},
                "expect": ["warehouse.load.failed"],
                "for_each": ["prefect.resource.id"],
            },
            "actions": [
                {
                    "type": "call-webhook",
                    "url": pager,
                    "json": {"summary": "{{ event.resource.id }}: load failed"},
                }
            ],
        },
        {
            "name": "legacy-cron-alerts",
            "description": "Paused while the cron jobs move to Prefect",
            "enabled": False,
            "trigger": {"type": "event", "expect": ["cron.job.failed"]},
            "actions": [{"type": "send-slack", "webhook_url": SLACK}],
        },
    ]


SLAS: list[dict[str, Any]] = [
    {
        "name": "etl-finishes-within-2h",
        "description": "Every run of an etl-* flow completes within 2 hours of starting",
        "kind": "duration",
        "severity": "critical",
        "start": ["prefect.flow-run.Running"],
        "expect": ["prefect.flow-run.Completed"],
        "match": FLOW_RUN,
        "match_related": of_flow("etl-*"),
        "for_each": ["prefect.resource.id"],
        "within": "2h",
        "warn_before": {"before": "30m", "actions": [{"type": "send-slack", "webhook_url": SLACK}]},
        "actions": [{"type": "send-slack", "webhook_url": SLACK}],
    },
    {
        "name": "warehouse-tables-fresh",
        "description": "Each warehouse table loads at least every 30 minutes",
        "kind": "freshness",
        "expect": ["warehouse.load.succeeded"],
        "match": {"prefect.resource.id": "warehouse.table.*"},
        "for_each": ["prefect.resource.id"],
        "every": "30m",
    },
    {
        "name": "sales-table-by-9",
        "description": "The sales table is refreshed by 9:00 Berlin time on business days",
        "kind": "deadline",
        "expect": ["dbt.model.refreshed"],
        "match": {"prefect.resource.id": "dbt.model.sales"},
        "deadline": {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"},
        "grace": "5m",
    },
]

WEBHOOKS: list[dict[str, Any]] = [
    {
        "slug": "github",
        "description": "Pushes to the data repositories",
        "signature": {"scheme": "github", "secret": "{{ secret('GITHUB_WEBHOOK_SECRET') }}"},
        "template": (
            '{"event": "github.{{ headers[\'x-github-event\'] }}", '
            '"resource": {"prefect.resource.id": "github.repo.{{ body.repository.full_name }}"}, '
            '"payload": {{ body | tojson }}}'
        ),
    },
    {
        "slug": "deploys",
        "description": "The deploy pipeline reports releases",
        "mapping": {
            "event": "join('.', ['deploy', status])",
            "resource": {"prefect.resource.id": "join('.', ['service', service])"},
        },
    },
]


def run_id(flow: str, run: int) -> str:
    digest = hashlib.sha256(f"{flow}/{run}".encode()).digest()[:16]
    return f"prefect.flow-run.{uuid.UUID(bytes=digest, version=4)}"


def flow_run(state: str, flow: str, run: int, at: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": at.isoformat(),
        "event": f"prefect.flow-run.{state}",
        "resource": {
            "prefect.resource.id": run_id(flow, run),
            "prefect.resource.name": f"{RUN_NAMES[run % len(RUN_NAMES)]}-{run}",
            "prefect.state-type": state.upper(),
        },
        "related": [
            {
                "prefect.resource.id": f"prefect.flow.{flow}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            },
            {
                "prefect.resource.id": f"prefect.deployment.{flow}-hourly",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": f"{flow}/hourly",
            },
        ],
        "payload": {"validated_state": {"type": state.upper(), "name": state}, **payload},
    }


def simple(name: str, resource: str, at: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": at.isoformat(),
        "event": name,
        "resource": {"prefect.resource.id": resource},
        "payload": payload,
    }


@dataclass
class Day:
    """A day of events: history (stored before any definition, so nothing reacts to it),
    then the last two hours (after the definitions), and the events tests look for."""

    history: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # the 3 that fire
    late_run: str = ""  # missed its 2 hours
    slow_run: str = ""  # at risk of missing them

    @property
    def count(self) -> int:
        return len(self.history) + len(self.recent)


def a_day(now: datetime) -> Day:
    """Every 2 hours each etl flow runs and completes, and dbt refreshes the sales model
    after etl-sales; the warehouse loads every 30 minutes. In the last 2 hours: etl-orders
    and etl-sales complete (and dbt follows), an etl-inventory run hangs, a slow etl-orders
    run runs, etl-customers fails 3 times in a row, the orders table stops loading and one
    of its loads fails."""
    day = Day()

    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    run = 0
    for hours in range(23, 2, -2):
        for i, flow in enumerate(FLOWS):
            run += 1
            start = ago(hours * 60 + 30 - 9 * i)
            took = timedelta(minutes=11 + 7 * i + (hours % 3) * 4)
            day.history += [flow_run("Running", flow, run, start)]
            day.history += [flow_run("Completed", flow, run, start + took)]
            if flow == "etl-sales":
                refreshed = start + took + timedelta(minutes=6)
                rows = 18_000 + 37 * run
                day.history += [
                    simple("dbt.model.refreshed", "dbt.model.sales", refreshed, rows=rows)
                ]
    for minutes in range(24 * 60 - 40, 120, -30):
        for table in ("orders", "customers"):
            name = f"warehouse.table.{table}"
            day.history += [simple("warehouse.load.succeeded", name, ago(minutes), rows=900)]

    for flow, started, minutes in (("etl-orders", 118, 24), ("etl-sales", 112, 27)):
        run += 1
        day.recent += [flow_run("Running", flow, run, ago(started))]
        day.recent += [flow_run("Completed", flow, run, ago(started - minutes))]
    day.recent += [simple("dbt.model.refreshed", "dbt.model.sales", ago(78), rows=18_912)]
    run += 1
    late = flow_run("Running", "etl-inventory", run, ago(150))
    day.late_run = late["resource"]["prefect.resource.id"]
    run += 1
    slow = flow_run("Running", "etl-orders", run, ago(100))
    day.slow_run = slow["resource"]["prefect.resource.id"]
    day.recent += [late, slow]
    for attempt, minutes in enumerate((48, 44, 40), start=1):
        run += 1
        error = f"psycopg.OperationalError: connection to warehouse refused (attempt {attempt})"
        failed = flow_run("Failed", "etl-customers", run, ago(minutes), message=error)
        day.recent += [flow_run("Running", "etl-customers", run, ago(minutes + 1)), failed]
        day.failures.append(failed)
    for minutes in (25, 12):
        run += 1
        day.recent += [flow_run("Running", "etl-sales", run, ago(minutes))]
    for minutes in (110, 90, 70, 50, 30, 10):
        day.recent += [
            simple("warehouse.load.succeeded", "warehouse.table.customers", ago(minutes), rows=950)
        ]
    for minutes in (110, 90, 70):
        day.recent += [
            simple("warehouse.load.succeeded", "warehouse.table.orders", ago(minutes), rows=1_204)
        ]
    day.recent += [
        simple(
            "warehouse.load.failed",
            "warehouse.table.orders",
            ago(25),
            error="COPY failed: disk quota exceeded on warehouse-2",
        )
    ]
    day.history.sort(key=lambda e: str(e["occurred"]))
    day.recent.sort(key=lambda e: str(e["occurred"]))
    return day


def github_headers(body: bytes, secret: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": f"sha256={signature}",
    }


async def posted(http: httpx.AsyncClient, path: str, body: Any) -> None:
    answer = await http.post(path, json=body)
    assert answer.status_code in (200, 202), answer.text


@dataclass
class Board:
    """An engine with a day of events, what fired, missed and failed on it."""

    running: Running
    day: Day

    @property
    def url(self) -> str:
        return self.running.url

    def client(self) -> httpx.AsyncClient:
        return self.running.client()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def board(engines: Engines, tmp_path_factory: pytest.TempPathFactory) -> Board:
    closed = free_port()  # nothing listens there: Slack and the pager refuse at once
    secrets = tmp_path_factory.mktemp("secrets") / "secrets.env"
    secrets.write_text(
        f"SLACK_WEBHOOK_URL=http://127.0.0.1:{closed}/services/T0/B0/x\n"
        f"GITHUB_WEBHOOK_SECRET={GITHUB_SECRET}\n"
    )
    running = await engines.start(
        "board", secrets_file=secrets, action_retries=0, allow_private_urls=True
    )
    day = a_day(clock.now())
    async with running.client() as http:
        await posted(http, "/api/events", day.history)
        await running.wait_stored(len(day.history), timeout=30)
        definitions = {
            "automations": automations(f"http://127.0.0.1:{closed}/pager"),
            "slas": SLAS,
            "webhooks": WEBHOOKS,
        }
        await posted(http, "/api/definitions/apply", definitions)
        await posted(http, "/api/events", day.recent)
        await running.wait_stored(day.count, timeout=30)
        push = orjson.dumps(
            {"repository": {"full_name": "acme/warehouse"}, "ref": "refs/heads/main"}
        )
        signed = await http.post(
            "/hooks/github", content=push, headers=github_headers(push, GITHUB_SECRET)
        )
        assert signed.status_code == 202, signed.text
        forged = await http.post(
            "/hooks/github", content=push, headers=github_headers(push, "guess")
        )
        assert forged.status_code == 401
        release = {"service": "api", "status": "finished", "version": "2026.12.1"}
        await posted(http, "/hooks/deploys", release)
        # The timers' pass now rather than at their next tick: misses, warnings, proactive
        # triggers that expired.
        await running.engine.pipeline.run_due(clock.now())

        async def settled() -> list[Any]:
            listed = (await http.get("/api/actions", params={"limit": 1000})).json()
            done = all(a["status"] in ("succeeded", "failed") for a in listed)
            return listed if len(listed) >= 8 and done else []

        await eventually(settled, 30, "every action run")
    return Board(running, day)


# Every page ----------------------------------------------------------------------------


async def test_the_root_redirects_to_the_overview_which_shows_health_and_figures(
    board: Board, page: Page
) -> None:
    async with board.client() as http:
        failed = (await http.get("/api/actions", params={"status": "failed"})).json()
        slas = (await http.get("/api/slas")).json()
        listed = (await http.get("/api/actions", params={"limit": 1000})).json()
    await page.goto(board.url + "/")
    await expect(page).to_have_url(board.url + "/ui/")
    await expect(page.locator("h1")).to_have_text("Overview")
    health = page.get_by_role("region", name="Health")
    await expect(health).to_contain_text("Healthy")
    await expect(health).to_contain_text("Bus connected")
    await expect(health).to_contain_text("Database sqlite")
    await expect(health).to_contain_text("Roles actions, api, sla, worker")
    assert await figure(page, "actions failed") == str(len(failed))
    assert len(failed) >= 5
    assert await figure(page, "SLA keys missed") == str(sum(s["missed"] for s in slas))
    assert await figure(page, "SLA keys at risk") == "1"
    assert await figure(page, "firings in 24 h") == str(len({a["firing_id"] for a in listed}))
    assert await figure(page, "webhook requests rejected") == "1"
    per_minute = await page.locator(".figure", has_text="events per minute").inner_text()
    stored = re.search(r"\(([\d,]+) in 24 h\)", per_minute)
    assert stored is not None
    assert int(stored[1].replace(",", "")) >= board.day.count
    chart = page.get_by_role("img", name="events over the last 24 hours")
    assert await chart.locator("rect").count() >= 40  # the day's bars, stacked
    await expect(page.locator(".legend")).to_contain_text("prefect.flow-run")
    await shoot(page, "overview")


async def test_the_overview_in_the_dark_scheme(board: Board, browser: Browser) -> None:
    tab = await open_tab(browser, "dark")
    try:
        await tab.page.goto(board.url + "/ui/")
        colours = await tab.page.evaluate(
            "[getComputedStyle(document.body).backgroundColor, "
            "getComputedStyle(document.body).color]"
        )
        background, text = ([int(c) for c in re.findall(r"\d+", colour)[:3]] for colour in colours)
        assert max(background) < 64  # the dark palette: dark ground, light text
        assert min(text) > 192
        await shoot(tab.page, "overview-dark")
    finally:
        await tab.page.context.close()
    assert tab.errors == []


async def test_events_list_filters_and_pages(board: Board, page: Page) -> None:
    await page.goto(board.url + "/ui/events")
    rows = page.locator("tbody tr[id^=event-]")
    await expect(rows).to_have_count(50)  # a page; the day holds more
    await expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "open")
    await expect(page.get_by_role("img", name="matching events over the range")).to_be_visible()
    await shoot(page, "events")

    await page.get_by_role("link", name="Older →").click()
    await expect(page.get_by_role("link", name="Newest")).to_be_visible()
    await expect(rows.first).to_be_visible()

    await page.goto(board.url + "/ui/events")
    await page.get_by_label("Event name starts with").fill("prefect.flow-run.Failed")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r"event=prefect\.flow-run\.Failed"))
    await expect(rows).to_have_count(3)
    for event in board.day.failures:
        await expect(page.locator(f"#event-{event['id']}")).to_contain_text(
            "prefect.flow-run.Failed"
        )
        await expect(page.locator(f"#event-{event['id']}")).to_contain_text("flow: etl-customers")


async def test_an_event_shows_its_labels_payload_and_what_automations_made_of_it(
    board: Board, page: Page
) -> None:
    third = board.day.failures[-1]
    await page.goto(board.url + "/ui/events?event=prefect.flow-run.Failed")
    await (
        page.locator(f"#event-{third['id']}")
        .get_by_role("link", name="prefect.flow-run.Failed")
        .click()
    )
    await expect(page).to_have_url(f"{board.url}/ui/events/{third['id']}")
    await expect(page.locator("h1")).to_have_text("prefect.flow-run.Failed")
    labels = page.locator("dl.facts").nth(1)
    await expect(labels).to_contain_text(third["resource"]["prefect.resource.id"])
    await expect(labels).to_contain_text(third["resource"]["prefect.resource.name"])
    await expect(page.get_by_role("link", name="prefect.flow.etl-customers")).to_be_visible()
    payload = orjson.loads(await page.locator("#payload").inner_text())
    assert payload == third["payload"]
    decision = page.locator(".timeline li").filter(has_text="etl-flow-keeps-failing")
    await expect(decision).to_contain_text("fired")
    await expect(decision).to_contain_text("3 of 3 events within 10m")
    await shoot(page, "event")


async def test_automations_list_their_triggers_in_words_firings_and_state(
    board: Board, page: Page
) -> None:
    await page.goto(board.url + "/ui/automations")
    await expect(page.locator("tbody tr")).to_have_count(6)
    failing = row(page, "etl-flow-keeps-failing")
    await expect(failing).to_contain_text(
        "3 prefect.flow-run.Failed within 10m, per flow, "
        "where payload.validated_state.type == 'FAILED'"
    )
    await expect(failing.locator(".badge")).to_have_text("1")  # its failed Slack message
    await expect(failing.get_by_role("button")).to_have_attribute("aria-pressed", "true")
    await expect(row(page, "nightly-etls-done")).to_contain_text(
        "all of: prefect.flow-run.Completed; prefect.flow-run.Completed, within 2h"
    )
    await expect(row(page, "sales-model-refreshed-after-etl")).to_contain_text("in order: ")
    await expect(row(page, "etl-run-not-completed")).to_contain_text(
        "fewer than 1 prefect.flow-run.Completed or prefect.flow-run.Failed within 1h after "
        "prefect.flow-run.Running, per resource"
    )
    legacy = row(page, "legacy-cron-alerts")
    await expect(legacy).to_contain_text("never")
    await expect(legacy.get_by_role("button")).to_have_text("Paused")
    await expect(legacy.get_by_role("button")).to_have_attribute("aria-pressed", "false")
    await shoot(page, "automations")


async def test_an_automation_shows_firings_decisions_and_definition(
    board: Board, page: Page
) -> None:
    await page.goto(board.url + "/ui/automations")
    await page.get_by_role("link", name="etl-flow-keeps-failing").click()
    await expect(page).to_have_url(board.url + "/ui/automations/etl-flow-keeps-failing")
    await expect(page.locator("h1")).to_contain_text("etl-flow-keeps-failing")
    await expect(page.locator("h1 .badge")).to_have_text("enabled")
    await expect(page.locator(".panel", has_text="When it fires")).to_contain_text(
        "1 firing in the last 24 hours"
    )
    firing = page.locator("table tbody tr")
    await expect(firing).to_have_count(1)
    await expect(firing).to_contain_text("send-slack")
    await expect(firing.locator(".badge")).to_have_text("failed")
    decisions = page.locator(".timeline li")
    await expect(decisions.first).to_contain_text("fired: 3 of 3 events within 10m")
    await expect(decisions.first.get_by_role("link")).to_have_attribute(
        "href", f"/ui/events/{board.day.failures[-1]['id']}"
    )
    definition = page.locator("#definition")
    await expect(definition).to_contain_text("name: etl-flow-keeps-failing")
    await expect(definition).to_contain_text("threshold: 3")
    await expect(definition).to_contain_text("- type: send-slack")
    await expect(page.get_by_role("button", name="Copy")).to_be_visible()  # the script ran
    await shoot(page, "automation")


async def test_the_sla_board_and_an_sla_page(board: Board, page: Page) -> None:
    await page.goto(board.url + "/ui/slas")
    duration = page.locator("section", has=page.get_by_role("link", name="etl-finishes-within-2h"))
    await expect(duration.locator("h3 .badge")).to_have_text("1 missed")
    late = duration.locator("tr", has_text=board.day.late_run)
    await expect(late.locator(".badge")).to_have_text("missed")
    slow = duration.locator("tr", has_text=board.day.slow_run)
    await expect(slow.locator(".badge")).to_have_text("at-risk")
    await expect(slow.locator("[data-countdown]")).to_have_text(re.compile(r"^in \d+m \d+s$"))
    fresh = page.locator("section", has=page.get_by_role("link", name="warehouse-tables-fresh"))
    await expect(
        fresh.locator("tr", has_text="warehouse.table.orders").locator(".badge")
    ).to_have_text("missed")
    await expect(
        fresh.locator("tr", has_text="warehouse.table.customers").locator(".badge")
    ).to_have_text("ok")
    await expect(page.get_by_role("link", name="sales-table-by-9")).to_be_visible()
    await shoot(page, "slas")

    await page.get_by_role("link", name="etl-finishes-within-2h").click()
    await expect(page).to_have_url(board.url + "/ui/slas/etl-finishes-within-2h")
    await expect(page.locator("h1")).to_have_text("etl-finishes-within-2h")
    assert await figure(page, "missed now") == "1"
    assert await figure(page, "at risk now") == "1"
    await expect(page.locator("tr", has_text=board.day.late_run)).to_be_visible()
    await expect(page.locator("pre")).to_contain_text("kind: duration")
    await shoot(page, "sla")


async def test_actions_list_the_ledger_and_filter_by_status(board: Board, page: Page) -> None:
    await page.goto(board.url + "/ui/actions")
    await expect(row(page, "warehouse-load-failed")).to_contain_text("call-webhook")
    await expect(row(page, "sales-model-refreshed-after-etl").first).to_contain_text("succeeded")
    await shoot(page, "actions")
    await page.get_by_role("link", name="failed", exact=True).click()
    await expect(page).to_have_url(board.url + "/ui/actions?status=failed")
    rows = page.locator("tbody tr")
    async with board.client() as http:
        failed = (await http.get("/api/actions", params={"status": "failed"})).json()
    await expect(rows).to_have_count(len(failed))
    await expect(rows.locator(".badge")).to_have_text(["failed"] * len(failed))
    await expect(rows.get_by_role("button", name="Retry")).to_have_count(len(failed))
    for button in await rows.get_by_role("button", name="Retry").all():
        await expect(button).to_be_enabled()
    pager = row(page, "warehouse-load-failed")
    await expect(pager).to_contain_text("call-webhook")


async def test_webhooks_show_deliveries_and_refusals(board: Board, page: Page) -> None:
    await page.goto(board.url + "/ui/webhooks")
    github = page.locator("section", has_text="/hooks/github")
    await expect(github.locator(".badge")).to_have_text("signed")
    await expect(github).not_to_contain_text("Last delivery: never")
    await expect(github.locator("tbody tr")).to_have_count(1)
    await expect(github.locator("tbody tr")).to_contain_text("401")
    await expect(github.locator("tbody tr")).to_contain_text("does not match")
    deploys = page.locator("section", has_text="/hooks/deploys")
    await expect(deploys).not_to_contain_text("Last delivery: never")
    await expect(deploys).to_contain_text("No refused requests kept.")
    await expect(page.locator("#sources + section")).to_contain_text("follows no Prefect server")
    await shoot(page, "webhooks")


# Alerts --------------------------------------------------------------------------------


def notify(slack: str, by: str) -> dict[str, Any]:
    """A Slack message per group of alerts with the same `by` label, sent at once."""
    grouping = {"by": [by], "wait": "0s", "interval": "5m", "repeat": "4h"}
    return {"type": "send-slack", "webhook_url": slack, "grouping": grouping}


def alerting_definitions(slack: str) -> dict[str, Any]:
    return {
        "automations": [
            {
                "name": "etl-run-failed",
                "description": "A failed run of an etl-* flow: one alert per flow",
                "severity": "critical",
                "tags": ["etl", "on-call"],
                "trigger": {
                    "type": "event",
                    "match": FLOW_RUN,
                    "match_related": of_flow("etl-*"),
                    "expect": ["prefect.flow-run.Failed"],
                    "for_each": ["related:flow:prefect.resource.name"],
                    "posture": "Reactive",
                    "threshold": 1,
                    "within": 0,
                },
                "actions": [notify(slack, "automation")],
            },
            {
                "name": "warehouse-load-failed",
                "description": "A failed warehouse load: one alert per table",
                "tags": ["warehouse"],
                "trigger": {
                    "type": "event",
                    "match": {"prefect.resource.id": "warehouse.table.*"},
                    "expect": ["warehouse.load.failed"],
                    "for_each": ["prefect.resource.id"],
                    "posture": "Reactive",
                    "threshold": 1,
                    "within": 0,
                },
                "actions": [notify(slack, "automation")],
            },
        ],
        "slas": [
            {
                "name": "warehouse-tables-fresh",
                "description": "Each warehouse table loads at least every 30 minutes",
                "kind": "freshness",
                "severity": "critical",
                "expect": ["warehouse.load.succeeded"],
                "match": {"prefect.resource.id": "warehouse.table.*"},
                "for_each": ["prefect.resource.id"],
                "every": "30m",
                "actions": [notify(slack, "sla")],
            }
        ],
    }


def troubles(now: datetime) -> list[dict[str, Any]]:
    """etl-customers fails 3 times, etl-inventory once; the orders table stops loading and
    its last load fails; a load of the events table failed earlier."""

    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    sent: list[dict[str, Any]] = []
    for run, minutes in enumerate((48, 44, 40), start=1):
        error = f"psycopg.OperationalError: connection to warehouse refused (attempt {run})"
        sent += [flow_run("Failed", "etl-customers", run, ago(minutes), message=error)]
    sent += [flow_run("Failed", "etl-inventory", 7, ago(95), message="out of memory")]
    for minutes in (110, 90, 70):
        sent += [simple("warehouse.load.succeeded", "warehouse.table.orders", ago(minutes))]
    for minutes in (50, 30, 10):
        sent += [simple("warehouse.load.succeeded", "warehouse.table.customers", ago(minutes))]
    sent += [simple("warehouse.load.failed", "warehouse.table.events", ago(65), error="timeout")]
    sent += [
        simple(
            "warehouse.load.failed",
            "warehouse.table.orders",
            ago(25),
            error="COPY failed: disk quota exceeded on warehouse-2",
        )
    ]
    return sorted(sent, key=lambda e: str(e["occurred"]))


@dataclass
class Alerting:
    """An engine with alerts in every state: firing, acknowledged, resolved by hand."""

    running: Running
    acknowledged: str  # etl-inventory's alert
    resolved: str  # the events table's

    @property
    def url(self) -> str:
        return self.running.url

    def client(self) -> httpx.AsyncClient:
        return self.running.client()


async def alert_of(http: httpx.AsyncClient, name: str, key: str) -> dict[str, Any]:
    """The alert of `name` for the key holding `key`, once it is there."""

    async def found() -> dict[str, Any] | None:
        listed = (await http.get("/api/alerts", params={"name": name})).json()
        return next((a for a in listed if key in a["key"].values()), None)

    return await eventually(found, 30, f"the alert of {name} for {key}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def alerting(engines: Engines) -> Alerting:
    closed = free_port()  # nothing listens there: the notices fail, as the ledger shows
    running = await engines.start("alerting", allow_private_urls=True)
    async with running.client() as http:
        slack = f"http://127.0.0.1:{closed}/services/T0/B0/x"
        await posted(http, "/api/definitions/apply", alerting_definitions(slack))
        sent = troubles(clock.now())
        await posted(http, "/api/events", sent)
        await running.wait_stored(len(sent), timeout=30)
        await running.engine.pipeline.run_due(clock.now())  # the orders table's miss
        inventory = await alert_of(http, "etl-run-failed", "etl-inventory")
        acknowledged = {"by": "dana", "for": "4h", "comment": "re-running after the disk swap"}
        answer = await http.post(f"/api/alerts/{inventory['id']}/acknowledge", json=acknowledged)
        assert answer.status_code == 200, answer.text
        events = await alert_of(http, "warehouse-load-failed", "warehouse.table.events")
        fixed = {"by": "sam", "comment": "loaded again by hand"}
        answer = await http.post(f"/api/alerts/{events['id']}/resolve", json=fixed)
        assert answer.status_code == 200, answer.text
        await alert_of(http, "etl-run-failed", "etl-customers")
        await alert_of(http, "warehouse-load-failed", "warehouse.table.orders")
        await alert_of(http, "warehouse-tables-fresh", "warehouse.table.orders")
    return Alerting(running, inventory["id"], events["id"])


async def test_the_alerts_list_shows_open_alerts_first(alerting: Alerting, page: Page) -> None:
    async with alerting.client() as http:
        listed = (await http.get("/api/alerts")).json()
    states = {a["id"]: a["state"] for a in listed}
    await page.goto(alerting.url + "/ui/")
    firing = sum(state == "firing" for state in states.values())
    assert await figure(page, "alerts firing") == str(firing)
    await page.locator(".figure", has_text="alerts firing").click()
    await expect(page).to_have_url(alerting.url + "/ui/alerts?state=firing")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(firing)
    await expect(rows.locator(".badge")).to_have_text(["firing"] * firing)

    await page.get_by_role("navigation", name="Sections").get_by_role("link", name="Alerts").click()
    await expect(page).to_have_url(alerting.url + "/ui/alerts")
    await expect(rows).to_have_count(len(listed))
    shown = [states[href.rsplit("/", 1)[1]] for href in await alert_links(page)]
    ranks = ["firing", "acknowledged", "resolved"]
    assert shown == sorted(shown, key=ranks.index)  # open ones first
    customers = row(page, "etl-customers")
    await expect(customers).to_contain_text("prefect.flow-run.Failed on")
    await expect(
        customers.get_by_role("link", name="etl-run-failed", exact=True)
    ).to_have_attribute("href", "/ui/automations/etl-run-failed")
    await expect(customers).to_contain_text("critical · automation etl-run-failed")
    await expect(customers.locator("td.num")).to_have_text("3")  # fired three times
    sla = row(page, "warehouse-tables-fresh")
    await expect(
        sla.get_by_role("link", name="warehouse-tables-fresh", exact=True)
    ).to_have_attribute("href", "/ui/slas/warehouse-tables-fresh")
    await expect(row(page, "etl-inventory")).to_contain_text("by dana")
    await shoot(page, "alerts")

    await page.get_by_label("Automation or SLA").fill("warehouse-load-failed")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r"name=warehouse-load-failed"))
    await expect(rows.locator(".badge")).to_have_text(["firing", "resolved"])


async def alert_links(page: Page) -> list[str]:
    """The alert pages the list links to, top to bottom."""
    links = page.locator("tbody a[href^='/ui/alerts/']")
    return [str(await link.get_attribute("href")) for link in await links.all()]


async def test_acknowledging_an_alert_from_its_page(alerting: Alerting, page: Page) -> None:
    await page.goto(alerting.url + "/ui/alerts?state=firing")
    await row(page, "etl-customers").get_by_role("link", name=re.compile("Failed on")).click()
    await expect(page).to_have_url(re.compile(r"/ui/alerts/[0-9a-f-]{36}$"))
    path = page.url.removeprefix(alerting.url)
    await expect(page.locator("h1 .badge")).to_have_text("firing")
    labels = page.locator("section", has=page.get_by_role("heading", name="Labels"))
    await expect(labels.locator("dd", has_text="etl, on-call")).to_be_visible()  # tags
    firings = page.locator("section", has_text="What fed it").locator("tbody tr")
    await expect(firings).to_have_count(3)
    await expect(firings.first.get_by_role("link")).to_have_attribute(
        "href", re.compile(r"^/ui/events/")
    )
    groups = page.locator("section", has_text="grouped notification").locator("tbody tr")
    await expect(groups).to_contain_text("send-slack")
    await expect(groups).to_contain_text("automation: etl-run-failed")
    await shoot(page, "alert")

    await page.get_by_label("For").fill("soon")
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_role("alert")).to_contain_text("for: 'soon' is not a duration")
    await page.get_by_label("For").fill("2h")
    await page.get_by_label("Comment").first.fill("restarting the warehouse connection")
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page).to_have_url(alerting.url + path)
    await expect(page.locator("h1 .badge")).to_have_text("acknowledged")
    acknowledgement = page.get_by_role("region", name="Acknowledgement")
    await expect(acknowledgement).to_contain_text("dashboard")
    await expect(acknowledgement).to_contain_text("then it fires again if still open")
    await expect(acknowledgement).to_contain_text("restarting the warehouse connection")
    async with alerting.client() as http:
        shown = (await http.get("/api/alerts" + path.removeprefix("/ui/alerts"))).json()
    assert shown["state"] == "acknowledged"
    assert shown["acknowledged_by"] == "dashboard"
    assert shown["comment"] == "restarting the warehouse connection"


# Changes and the live feed -------------------------------------------------------------


async def enabled(http: httpx.AsyncClient, name: str) -> bool:
    """The automation's switch, as the API reads it."""
    answer = await http.get(f"/api/automations/{name}")
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["enabled"])


async def test_the_toggle_pauses_and_resumes_an_automation(board: Board, page: Page) -> None:
    await page.goto(board.url + "/ui/automations")
    toggle = row(page, "nightly-etls-done").get_by_role("button")
    await expect(toggle).to_have_text("Enabled")
    await toggle.click()
    await expect(page).to_have_url(board.url + "/ui/automations")  # back, after a redirect
    await expect(toggle).to_have_text("Paused")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    async with board.client() as http:
        assert await enabled(http, "nightly-etls-done") is False
        await toggle.click()
        await expect(toggle).to_have_text("Enabled")
        assert await enabled(http, "nightly-etls-done") is True

    # From the automation's own page, back to it.
    await page.get_by_role("link", name="warehouse-load-failed").click()
    await page.get_by_role("button", name="Enabled").click()
    await expect(page).to_have_url(board.url + "/ui/automations/warehouse-load-failed")
    await expect(page.locator("h1 .badge")).to_have_text("paused")
    async with board.client() as http:
        assert await enabled(http, "warehouse-load-failed") is False
        await page.get_by_role("button", name="Paused").click()
        await expect(page.locator("h1 .badge")).to_have_text("enabled")
        assert await enabled(http, "warehouse-load-failed") is True


async def test_an_event_emitted_after_the_page_loaded_appears_in_the_live_feed(
    board: Board, page: Page
) -> None:
    await page.goto(board.url + "/ui/events?event=deploy.")
    await expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "open")
    await page.evaluate("window.__sameDocument = true")
    rows = page.locator("tbody tr[id^=event-]")
    shown = await rows.count()
    other = simple("warehouse.load.succeeded", "warehouse.table.orders", clock.now())
    release = simple("deploy.finished", "service.billing", clock.now(), version="2026.12.2")
    release["related"] = [
        {"prefect.resource.id": "team.payments", "prefect.resource.role": "owner"}
    ]
    async with board.client() as http:
        await posted(http, "/api/events", [other])  # does not match the page's filter
        await posted(http, "/api/events", [release])
    arrived = page.locator(f"#event-{release['id']}")
    await expect(arrived).to_be_visible()
    await expect(rows.first).to_have_id(f"event-{release['id']}")  # on top
    await expect(arrived).to_have_class("arrived")
    await expect(arrived).to_contain_text("deploy.finished")
    await expect(arrived).to_contain_text("service.billing")
    await expect(arrived).to_contain_text("owner: team.payments")
    await expect(rows).to_have_count(shown + 1)  # the load, emitted first, was left out
    await expect(page.locator(f"#event-{other['id']}")).to_have_count(0)
    assert await page.evaluate("window.__sameDocument") is True  # no reload

    await arrived.get_by_role("link", name="deploy.finished").click()
    await expect(page.locator("h1")).to_have_text("deploy.finished")


# Text from outside never runs -----------------------------------------------------------

SCRIPT = "<script>window.__xss=1</script>"
ATTRIBUTE = '"onmouseover="window.__xss=1'
IMAGE = "<img src=x onerror=window.__xss=1>"
HOSTILE = f"{SCRIPT} {ATTRIBUTE} {IMAGE}"


def hostile_event(name: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": clock.now().isoformat(),
        "event": name,
        "resource": {
            "prefect.resource.id": f"res.{ATTRIBUTE}{IMAGE}",
            "prefect.resource.name": HOSTILE,
            f"label.{ATTRIBUTE}": IMAGE,
        },
        "related": [
            {
                "prefect.resource.id": f"rel.{SCRIPT}",
                "prefect.resource.role": ATTRIBUTE,
                "prefect.resource.name": IMAGE,
            }
        ],
        "payload": {"note": HOSTILE, SCRIPT: [IMAGE, ATTRIBUTE]},
    }


EVENT_NAME = f"x.{SCRIPT}.{ATTRIBUTE}.{IMAGE}"
AUTOMATION_NAME = f"alert {HOSTILE}"


async def inert(page: Page) -> None:
    """Nothing injected ran or can run: no handler attributes, no images, only the
    dashboard's own script; window.__xss unset after every element was hovered over."""
    injected = await page.evaluate(
        """() => ({
            handlers: document.querySelectorAll("[onmouseover], [onerror]").length,
            images: document.images.length,
            scripts: [...document.scripts].map((s) => s.getAttribute("src")),
        })"""
    )
    assert injected["handlers"] == 0
    assert injected["images"] == 0
    assert len(injected["scripts"]) == 1
    assert injected["scripts"][0].startswith("/ui/static/ui.js")
    await page.evaluate(
        """() => { for (const el of document.querySelectorAll("body *")) {
            el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
        } }"""
    )
    for element in await page.locator("main").get_by_text("__xss").all():
        if await element.is_visible():
            await element.hover()
    assert await page.evaluate("window.__xss") is None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hostile(engines: Engines) -> tuple[Running, dict[str, Any]]:
    """An engine with an event carrying hostile text everywhere, and an automation named
    and described with it that fired on it."""
    running = await engines.start("hostile")
    automation = {
        "name": AUTOMATION_NAME,
        "description": f"fires on {HOSTILE}",
        "trigger": {"type": "event", "expect": [EVENT_NAME]},
        "actions": [{"type": "do-nothing"}],
    }
    event = hostile_event(EVENT_NAME)
    async with running.client() as http:
        await posted(http, "/api/definitions/apply", {"automations": [automation]})
        await posted(http, "/api/events", [event])

        async def fired() -> bool:
            listed = (await http.get("/api/actions")).json()
            return any(a["status"] == "succeeded" for a in listed)

        await eventually(fired, 30, "the hostile automation fired")
    return running, event


async def test_text_from_events_and_definitions_is_shown_never_run(
    hostile: tuple[Running, dict[str, Any]], page: Page
) -> None:
    running, event = hostile
    await page.goto(running.url + "/ui/events")
    listed = page.locator(f"#event-{event['id']}")
    await expect(listed.get_by_role("link", name=EVENT_NAME)).to_be_visible()
    await expect(listed).to_contain_text(f"res.{ATTRIBUTE}{IMAGE}")
    await expect(listed).to_contain_text(f"{ATTRIBUTE}: {IMAGE}")  # role: name
    await inert(page)

    # A row the live feed brings, written by the same template, inserted by the script.
    await expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "open")
    again = hostile_event(f"y.{IMAGE}.{SCRIPT}")
    async with running.client() as http:
        await posted(http, "/api/events", [again])
    arrived = page.locator(f"#event-{again['id']}")
    await expect(arrived.get_by_role("link", name=again["event"])).to_be_visible()
    await expect(arrived).to_contain_text(HOSTILE)
    await inert(page)

    await listed.get_by_role("link", name=EVENT_NAME).click()
    await expect(page.locator("h1")).to_have_text(EVENT_NAME)
    labels = page.locator("dl.facts").nth(1)
    await expect(labels.locator("dt", has_text=f"label.{ATTRIBUTE}")).to_be_visible()
    await expect(labels).to_contain_text(HOSTILE)
    await expect(page.get_by_role("link", name=f"rel.{SCRIPT}")).to_be_visible()
    assert orjson.loads(await page.locator("#payload").inner_text()) == event["payload"]
    decision = page.locator(".timeline li")
    await expect(decision.get_by_role("link", name=AUTOMATION_NAME)).to_be_visible()
    await inert(page)

    await decision.get_by_role("link", name=AUTOMATION_NAME).click()
    await expect(page.locator("h1")).to_contain_text(AUTOMATION_NAME)
    await expect(page.locator(".lede")).to_have_text(f"fires on {HOSTILE}")
    await expect(page.locator(".timeline li").first).to_contain_text(EVENT_NAME)
    await expect(page.locator("#definition")).to_contain_text(IMAGE)
    toggle = page.get_by_role("button", name="Enabled")
    await expect(toggle).to_have_attribute("title", f"Pause {AUTOMATION_NAME}")
    await inert(page)

    await page.goto(running.url + "/ui/automations")
    listed_automation = row(page, AUTOMATION_NAME)
    await expect(listed_automation.get_by_role("link", name=AUTOMATION_NAME)).to_be_visible()
    await expect(listed_automation).to_contain_text(f"fires on {HOSTILE}")
    await expect(listed_automation).to_contain_text(EVENT_NAME)  # the trigger in words
    await inert(page)

    await page.goto(running.url + "/ui/actions")
    await expect(row(page, AUTOMATION_NAME)).to_contain_text("do-nothing")
    await inert(page)

    # The alert its firing opened: named, labelled and summed up with the same text.
    await page.goto(running.url + "/ui/alerts")
    alert = row(page, AUTOMATION_NAME)
    await expect(alert.get_by_role("link", name=AUTOMATION_NAME, exact=True)).to_be_visible()
    await inert(page)
    await alert.get_by_role("link", name=f"{EVENT_NAME} on {HOSTILE}").click()
    await expect(page.locator("h1")).to_contain_text(f"{EVENT_NAME} on {HOSTILE}")
    labels = page.locator("section", has=page.get_by_role("heading", name="Labels"))
    await expect(labels.locator("dt", has_text=f"label.{ATTRIBUTE}")).to_be_visible()
    await inert(page)

    # The toggle's form still names this automation: pausing it works.
    await page.goto(running.url + "/ui/automations")
    await listed_automation.get_by_role("button", name="Enabled").click()
    await expect(listed_automation.get_by_role("button")).to_have_text("Paused")
    async with running.client() as http:
        found = (await http.get("/api/automations")).json()
    assert [a["enabled"] for a in found if a["name"] == AUTOMATION_NAME] == [False]


# Signing in ----------------------------------------------------------------------------

WRITE_KEY = "board-write-key-0123456789"
READ_KEY = "board-read-key-0123456789"
BEARER = {"Authorization": f"Bearer {WRITE_KEY}"}
WATCHED = {"name": "orders-load-failed", "trigger": {"type": "event", "expect": ["load.failed"]}}


async def sign_in(page: Page, secret: str) -> None:
    await page.get_by_label("Key").fill(secret)
    await page.get_by_role("button", name="Sign in").click()


async def test_sign_in_with_the_api_key_or_a_read_only_key(engines: Engines, page: Page) -> None:
    running = await engines.start("locked", api_key=WRITE_KEY, api_read_keys=[READ_KEY])
    async with running.client(headers=BEARER) as http:
        await posted(http, "/api/definitions/apply", {"automations": [WATCHED]})
    url = running.url

    await page.goto(url + "/ui/")
    await expect(page).to_have_url(url + "/ui/login?next=/ui/")
    await expect(page.locator("h1")).to_have_text("Sign in")
    await expect(page.get_by_role("navigation", name="Sections")).to_have_count(0)
    await sign_in(page, "not-a-key")
    await expect(page.get_by_role("alert")).to_contain_text("not the API key")
    await expect(page.locator("h1")).to_have_text("Sign in")
    assert await page.context.cookies() == []

    # With the API key: a session cookie the page's scripts cannot read, and changes.
    await page.goto(url + "/ui/automations")
    await expect(page).to_have_url(url + "/ui/login?next=/ui/automations")
    await sign_in(page, WRITE_KEY)
    await expect(page).to_have_url(url + "/ui/automations")
    (cookie,) = await page.context.cookies()
    assert cookie["name"] == "tripwire_session"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""
    await expect(page.locator(".who")).to_contain_text("signed in")
    forged = await page.evaluate(
        """async () => {
            const form = new FormData(document.querySelector("form[action$='/enabled']"));
            form.set("csrf", "forged");
            const answer = await fetch(location.pathname + "/orders-load-failed/enabled",
                                       {method: "POST", body: form});
            return answer.status;
        }"""
    )
    assert forged == 403  # signed in, but the form did not come from this session
    toggle = row(page, "orders-load-failed").get_by_role("button")
    await toggle.click()
    await expect(toggle).to_have_text("Paused")
    async with running.client(headers=BEARER) as http:
        assert await enabled(http, "orders-load-failed") is False
        await toggle.click()
        await expect(toggle).to_have_text("Enabled")
        assert await enabled(http, "orders-load-failed") is True
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(url + "/ui/login")
    assert await page.context.cookies() == []
    await page.goto(url + "/ui/automations")
    await expect(page).to_have_url(url + "/ui/login?next=/ui/automations")

    # With a read-only key: every page, no changes, even when the form is forced.
    await sign_in(page, READ_KEY)
    await expect(page).to_have_url(url + "/ui/automations")
    await expect(page.locator(".who")).to_contain_text("read-only")
    toggle = row(page, "orders-load-failed").get_by_role("button")
    await expect(toggle).to_be_disabled()
    status = await page.evaluate(
        """async () => {
            const form = document.querySelector("form[action$='/enabled']");
            const answer = await fetch(form.action, {method: "POST", body: new FormData(form)});
            return answer.status;
        }"""
    )
    assert status == 403
    async with page.expect_response(lambda r: r.url.endswith("/enabled")) as posting:
        await page.evaluate("document.querySelector(\"form[action$='/enabled']\").submit()")
    assert (await posting.value).status == 403
    await expect(page.locator("h1")).to_have_text("Read-only")
    async with running.client(headers=BEARER) as http:
        assert await enabled(http, "orders-load-failed") is True
    for path in ("/ui/", "/ui/events", "/ui/slas", "/ui/alerts", "/ui/actions", "/ui/webhooks"):
        await page.goto(url + path)
        await expect(page).to_have_url(url + path)
    await page.goto(url + "/ui/automations/orders-load-failed")
    await expect(page.get_by_role("button", name="Replay")).to_be_disabled()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(url + "/ui/login")
    await page.goto(url + "/ui/")
    await expect(page).to_have_url(url + "/ui/login?next=/ui/")
