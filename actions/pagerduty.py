"""pagerduty: one PagerDuty Events API v2 event, so a PagerDuty alert follows tripwire's.

With a notice from the alerts engine, the event follows the alert group: `trigger` while
it fires, `acknowledge` once acknowledged, `resolve` once resolved, always with the
group's fingerprint as `dedup_key`, so the three land on one PagerDuty alert. Without a
notice (a firing sent straight to the action), the firing's id is the `dedup_key` and its
state picks trigger or resolve.

The routing key is a credential: it travels in the body only, and every text this module
shows (outcomes, errors, PagerDuty's own answer) has it replaced by `***`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from actions.errors import ActionFailed, ActionRetry
from actions.execution import Execution, Executor, Outcome
from actions.http import RETRYABLE_STATUS, retry_after, summary, transport_error
from actions.model import PagerDuty
from actions.request import ActionRequest, FiringState
from actions.slack import fallback_text

DEFAULT_SOURCE = "tripwire"
SUMMARY_CHARS = 1024  # PagerDuty's limits
MAX_EVENT_BYTES = 512 * 1024
ALERTS_SHOWN = 20  # alerts listed in custom_details
RATE_LIMIT_WAIT = 30.0  # PagerDuty's advice after a 429 that names no wait

NOTICE_ACTIONS = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
FIRING_ACTIONS = {FiringState.triggered: "trigger", FiringState.resolved: "resolve"}
SEVERITIES = ("info", "warning", "error", "critical")  # least severe first

# Words in PagerDuty's `errors` and what to fix for each.
HINTS = {
    "routing_key": "routing_key must be the 32-character integration key of an Events API v2 "
    "integration on a PagerDuty service (not a REST API key); check the secret it renders from",
    "summary": "summary must render to some text",
    "source": "source must render to some text",
    "severity": "severity must be critical, error, warning or info",
    "dedup_key": "the dedup_key comes from the alert group or the firing; report this as a bug",
}


def event_action(request: ActionRequest) -> str:
    """trigger, acknowledge or resolve: the notice's status, else the firing's state."""
    if request.notice is not None:
        return NOTICE_ACTIONS[request.notice.status]
    return FIRING_ACTIONS[request.state]


def dedup_key(request: ActionRequest) -> str:
    """The alert group's fingerprint, else the firing's id: the same for every event about
    one alert, which is how PagerDuty knows they belong together."""
    if request.notice is not None:
        return request.notice.group
    return str(request.firing_id)


def _alert_severity(alert: dict[str, Any]) -> Any:
    labels = alert.get("labels") or {}
    return alert.get("severity") or (labels.get("severity") if isinstance(labels, dict) else None)


def severity(request: ActionRequest) -> str:
    """PagerDuty's severity for the most severe alert: critical, warning and info as they
    are, anything else (or none) error."""
    notice = request.notice
    if notice is None:
        found = [request.sla.get("severity") if request.sla else None]
    elif notice.alerts:
        found = [_alert_severity(alert) for alert in notice.alerts]
    else:
        found = [notice.labels.get("severity")]
    mapped = [value if value in SEVERITIES else "error" for value in found]
    return max(mapped, key=SEVERITIES.index)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def _alert_title(alert: dict[str, Any]) -> str:
    return str(alert.get("summary") or alert.get("name") or "").strip()


def default_summary(request: ActionRequest) -> str:
    """One alert: its summary. A group: how many fire, its labels and the alerts' titles.
    No notice: the firing in one line."""
    notice = request.notice
    if notice is None:
        return fallback_text(request)
    titles = _unique(_alert_title(alert) for alert in notice.alerts)
    if notice.total <= 1 and titles:
        return titles[0]
    head = f"{request.automation.name}: {notice.firing} of {notice.total} alerts firing"
    if notice.labels:
        head += " (" + ", ".join(f"{k}={v}" for k, v in sorted(notice.labels.items())) + ")"
    return f"{head}: {', '.join(titles)}" if titles else head


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_time(value: Any) -> datetime | None:
    """A datetime from an alert's field, which is a datetime or, read back as JSON, text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def timestamp(request: ActionRequest) -> str:
    """When the alerts last fired (ISO 8601, UTC), else when the trigger fired."""
    alerts = request.notice.alerts if request.notice is not None else []
    fired = [at for alert in alerts if (at := _as_time(alert.get("last_fired"))) is not None]
    at = max(fired, default=request.triggered)
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def custom_details(request: ActionRequest) -> dict[str, Any]:
    """What the responder sees besides the title: the group's labels and counts and its
    first alerts, or the firing's labels and event."""
    notice = request.notice
    details: dict[str, Any] = {"automation": request.automation.name}
    if notice is None:
        details |= {"firing_id": str(request.firing_id), "state": request.state.value}
        if request.triggering_labels:
            details["labels"] = dict(request.triggering_labels)
        event = request.triggering_event
        if event is not None:
            details |= {"event": event.event, "resource": event.resource.id}
        return details
    shown = []
    for alert in notice.alerts[:ALERTS_SHOWN]:
        entry = {field: alert.get(field) for field in ("name", "state", "labels")}
        # The for_each key tells apart the alerts of one automation.
        entry |= {field: alert[field] for field in ("key", "summary") if alert.get(field)}
        shown.append(entry)
    return details | {
        "labels": dict(notice.labels),
        "total": notice.total,
        "firing": notice.firing,
        "alerts": shown,
    }


def _rendered(template: str | None, run: Execution, field: str) -> str:
    return "" if template is None else run.render(template, f"pagerduty {field}").strip()


def _payload(action: PagerDuty, run: Execution) -> dict[str, Any]:
    """The trigger's payload; a template that renders blank falls back to the default, as
    a page with a plain title beats a page PagerDuty refuses."""
    request = run.request
    title = _rendered(action.summary, run, "summary") or default_summary(request)
    payload: dict[str, Any] = {
        "summary": _cut(title, SUMMARY_CHARS),
        "source": _rendered(action.source, run, "source") or DEFAULT_SOURCE,
        "severity": action.severity or severity(request),
        "timestamp": timestamp(request),
    }
    for name, template in (
        ("component", action.component),
        ("group", action.group),
        ("class", action.class_),
    ):
        if value := _rendered(template, run, name):
            payload[name] = value
    payload["custom_details"] = custom_details(request)
    return payload


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def encode(event: dict[str, Any]) -> bytes:
    """The event as JSON within PagerDuty's size limit: the alerts in custom_details are
    halved until it fits, then custom_details is left out."""
    body = _json(event)
    payload = event.get("payload") or {}
    while len(body) > MAX_EVENT_BYTES and "custom_details" in payload:
        alerts = payload["custom_details"].get("alerts")
        if alerts:
            payload["custom_details"]["alerts"] = alerts[: len(alerts) // 2]
        else:
            del payload["custom_details"]
        body = _json(event)
    if len(body) > MAX_EVENT_BYTES:
        raise ActionFailed(
            f"pagerduty: the event is {len(body) // 1024} KB, over PagerDuty's 512 KB; "
            "shorten what source, component, group or class render"
        )
    return body


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _refused(response: httpx.Response, where: str, action: str) -> str:
    """A 400 in words: PagerDuty's errors, then what to fix."""
    answer = _answer(response)
    listed = answer.get("errors")
    errors = [str(error) for error in listed] if isinstance(listed, list) else []
    reason = "; ".join(errors) or summary(response)
    hints = _unique(hint for word, hint in HINTS.items() if any(word in e for e in errors))
    fix = "; ".join(hints) or "fix what PagerDuty names, then retry the action"
    status = answer.get("status") or "invalid event"
    return f"{where} refused the {action} event (400 {status}): {reason}. To fix: {fix}"


def _read_answer(
    response: httpx.Response, where: str, action: str, hide: Callable[[str], str]
) -> None:
    """Raise for anything but 2xx, as PagerDuty's docs say: 400 is for good, 429 and 5xx
    are worth another try."""
    if response.is_success:
        return
    status = response.status_code
    if status == 400:
        raise ActionFailed(hide(_refused(response, where, action)), status_code=status)
    if status == 429:
        wait = retry_after(response)
        wait = RATE_LIMIT_WAIT if wait is None else wait
        raise ActionRetry(
            f"{where} is rate limiting this integration (429); trying again in {wait:g} s",
            status_code=status,
            retry_after=wait,
        )
    if status >= 500 or status in RETRYABLE_STATUS:
        raise ActionRetry(
            hide(f"{where} answered {summary(response)}; PagerDuty may be having trouble"),
            status_code=status,
            retry_after=retry_after(response),
        )
    if 300 <= status < 400:
        raise ActionFailed(
            f"{where} answered {status} (a redirect, not followed); give the Events API URL "
            "itself as url",
            status_code=status,
        )
    raise ActionFailed(
        hide(
            f"{where} answered {summary(response)}; check that url is the Events API v2 "
            "enqueue endpoint"
        ),
        status_code=status,
    )


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "no host"
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ActionFailed("pagerduty url: not a valid URL") from None


async def send_pagerduty(action: PagerDuty, run: Execution) -> Outcome:
    """Send one event: a trigger with its payload, or an acknowledge or resolve, which
    PagerDuty wants with nothing but the key and the dedup_key."""
    routing_key = _rendered(action.routing_key, run, "routing_key")
    if not routing_key:
        raise ActionFailed("pagerduty routing_key: rendered empty; give the integration key")

    def hide(text: str) -> str:
        return text.replace(routing_key, "***")

    url = run.render(action.url, "pagerduty url").strip()
    await run.guard.check(url, "pagerduty url")
    request = run.request
    action_name = event_action(request)
    key = dedup_key(request)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action_name,
        "dedup_key": key,
    }
    if action_name == "trigger":
        event["payload"] = _payload(action, run)
    body = encode(event)

    where = f"PagerDuty ({_host(url)})"
    try:
        # Redirects are not followed: the guard checked this URL only.
        response = await run.http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json"},
            follow_redirects=False,
        )
    except httpx.TransportError as exc:
        raise ActionRetry(hide(transport_error(exc, where).message)) from None
    _read_answer(response, where, action_name, hide)
    accepted = _answer(response).get("dedup_key")
    accepted = hide(accepted) if isinstance(accepted, str) and accepted else key
    return Outcome(
        summary=f"PagerDuty {action_name} accepted (dedup_key {accepted})",
        status_code=response.status_code,
        details={"event_action": action_name, "dedup_key": accepted},
    )


PAGERDUTY_EXECUTORS: dict[str, Executor] = {"pagerduty": send_pagerduty}
