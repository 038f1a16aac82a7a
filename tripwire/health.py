"""What /api/health reports and the dashboard's overview shows: bus, database, store
lag, timers and Prefect sources."""

from __future__ import annotations

from typing import Any

from tripwire import __version__
from tripwire.engine import Engine, Role


async def health(engine: Engine) -> tuple[bool, dict[str, Any]]:
    """Bus, database and store-consumer lag; ok only when every part answers."""
    bus_ok = engine.bus.is_connected
    report: dict[str, Any] = {
        "version": __version__,
        "roles": sorted(r.value for r in engine.roles),
    }
    report["bus"] = {"connected": bus_ok, "embedded": engine.embedded is not None}
    try:
        await engine.store.ping()
        report["database"] = {"ok": True, "dialect": engine.store.dialect}
    except Exception as exc:
        report["database"] = {"ok": False, "error": type(exc).__name__}
    lag: int | None = None
    if bus_ok:
        lag = await engine.bus.store_lag()  # None: no worker created a store consumer yet
    report["store_consumer"] = {"lag": lag}
    if engine.owner is not None:
        report["partitions"] = {
            "count": engine.settings.partitions,
            "member": engine.owner.name,
            "stored_here": engine.owner.owned,
        }
    if Role.sla in engine.roles:
        upcoming = engine.timer.next
        report["timers"] = {
            "leader": engine.leadership.leading,
            "next_due": upcoming.isoformat() if upcoming else None,
        }
    # A source that is down is reported, not "degraded": this process still ingests.
    report["sources"] = [follower.report() for follower in engine.followers]
    ok = bus_ok and report["database"]["ok"]
    report["status"] = "ok" if ok else "degraded"
    return ok, report
