"""The template sandbox: real Jinja, values that keep their JSON type, errors naming the
field and line, the limits on work and size, and secrets (read, refused, redacted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.errors import TemplateError
from events.sandbox import MAX_ITERATIONS, MAX_OUTPUT
from events.secrets import Secrets
from events.templating import Templates


@pytest.fixture
def templates() -> Templates:
    return Templates(Secrets(environ={}))


# --- rendering ---------------------------------------------------------------------------


def test_a_lone_expression_keeps_its_json_type(templates: Templates) -> None:
    context = {"payload": {"rows": 3, "ids": [1, 2], "meta": {"ok": True}}}
    rendered = templates.render_value(
        {
            "rows": "{{ payload.rows }}",
            "ids": " {{ payload.ids }} ",
            "meta": "{{- payload.meta -}}",
            "text": "rows: {{ payload.rows }}",
            "two": "{{ payload.rows }}{{ payload.rows }}",
            "kept": 5,
        },
        context,
        "parameters",
    )
    assert rendered == {
        "rows": 3,
        "ids": [1, 2],
        "meta": {"ok": True},
        "text": "rows: 3",
        "two": "33",
        "kept": 5,
    }
    assert type(rendered["rows"]) is int


def test_an_undefined_name_names_the_field_and_line(templates: Templates) -> None:
    with pytest.raises(TemplateError) as info:
        templates.render_value(
            {"a": ["fine", "first\n{{ payload.nope }}"]}, {"payload": {}}, "parameters"
        )
    assert info.value.field == "parameters.a[1]"
    assert "'dict object' has no attribute 'nope'" in str(info.value)
    assert "(line 2)" in str(info.value)
    with pytest.raises(TemplateError, match="'missing' is undefined") as lone:
        templates.render_value("{{ missing }}", {}, "json.x")
    assert lone.value.field == "json.x"


def test_check_names_the_field_and_line(templates: Templates) -> None:
    templates.check("plain {{ ok }}", "text")
    with pytest.raises(TemplateError) as info:
        templates.check("line one\n{% if x %}", "text")
    assert info.value.field == "text"
    assert "does not parse" in info.value.error
    assert "(line 2)" in info.value.error


def test_ordinary_templates_are_untouched_by_the_limits(templates: Templates) -> None:
    source = (
        "{% set ns = namespace(total=0) %}"
        "{% for k, v in counts|dictsort %}{% set ns.total = ns.total + v %}{{ k }}={{ v }} "
        "{% endfor %}"
        "{% macro shout(s) %}{{ s|upper }}!{% endmacro %}"
        "{% set note %}{{ shout('done') }}{% endset %}"
        "{{ ns.total }} {{ note }} {{ ['a', 'b']|join('+') }} {{ '%05d'|format(42) }} "
        "{{ '{:>4}'.format(7) }} {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ (1, 2)|list }} "
        "{{ {'k': 1}.k }} {% for i in range(3) %}{{ loop.index }}{% endfor %}"
    )
    rendered = templates.render(source, {"counts": {"a": 1, "b": 2}}, "text")
    assert rendered == "a=1 b=2 3 DONE! a+b 00042    7 ababab 1024 [1, 2] 1 123"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        # the iteration budget: range() items, loop passes and calls
        (
            "{% for i in range(200) %}{% for j in range(200) %}{% endfor %}{% endfor %}",
            f"more than {MAX_ITERATIONS:,} loop passes",
        ),
        ("{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}", "loop passes"),
        ("{{ range(10**12)|list }}", "range() items"),
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
            "{{ f(30) }}",
            "calls in one render",
        ),
        # the output cap
        (
            "{% for i in range(3000) %}{{ 'x' * 50 }}{% endfor %}",
            f"rendered text is longer than {MAX_OUTPUT:,} characters",
        ),
        # sizes refused before the value is built
        ("{{ 'x' * 10**9 }}", "the result of '*' is 1,000,000,000 characters"),
        ("{{ [rows] * 10**6 }}", "the result of '*'"),
        ("{{ 10 ** 1000000 }}", "'**' would be a number of about 1,000,000 digits"),
        ("{{ 'x'|center(10**9) }}", "center filter"),
        ("{{ 'x'.ljust(10**9) }}", "str.ljust()"),
        ("{{ '%999999999d' % 1 }}", "the width in a % format"),
        ("{{ '{:>{}}'.format(1, 10**9) }}", "computed width"),
        ("{{ ('a' * 9999)|replace('a', 'b' * 9999) }}", "replace filter"),
        # growth step by step: each step is sized right after it
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "a value the template built",
        ),
        (
            "{% macro d(s, n) %}{% if n %}{{ d(s|tojson, n - 1) }}{% endif %}{% endmacro %}"
            "{{ d('<', 40) }}",
            "tojson filter",
        ),
        (
            "{% set a = 'x' * 1000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
            "{% set c = [b, b, b, b, b, b, b, b, b, b] %}",
            "a value the template built",
        ),
    ],
)
def test_each_limit_is_refused_with_a_clear_message(
    templates: Templates, source: str, words: str
) -> None:
    with pytest.raises(TemplateError) as info:
        templates.render(source, {"rows": list(range(500))}, "body")
    assert info.value.field == "body"
    assert words in info.value.error
    assert "allowed" in info.value.error or "render" in info.value.error  # says what to do


def test_a_slow_render_is_stopped() -> None:
    quick = Templates(Secrets(environ={}), max_seconds=0.01)
    # 9,000 loop passes (inside the budget), each scanning a 9,000-item list: far past 10ms.
    source = "{% for a in rows %}{% if -a in rows %}{% endif %}{% endfor %}"
    with pytest.raises(TemplateError, match=r"took more than 0.01s to render"):
        quick.render(source, {"rows": list(range(9000))}, "text")


def test_lipsum_is_not_available(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        templates.render("{{ lipsum(10**9) }}", {}, "text")


# --- secrets -----------------------------------------------------------------------------


def test_secret_reads_the_secrets_file_then_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "secrets"
    file.write_text('# for the webhook\nexport TOKEN="from-file-1234"\n\n')
    secrets = Secrets(environ={"TOKEN": "from-env-1234", "OTHER": "env-only-5678"}, file=file)
    rendered = Templates(secrets).render("{{ secret('TOKEN') }}/{{ secret('OTHER') }}", {}, "url")
    assert rendered == "from-file-1234/env-only-5678"


def test_a_missing_secret_names_the_variable_and_the_field() -> None:
    templates = Templates(Secrets(environ={}))
    with pytest.raises(TemplateError) as info:
        templates.render("https://hooks.slack.com/{{ secret('SLACK_PATH') }}", {}, "webhook_url")
    assert info.value.field == "webhook_url"
    assert "secret 'SLACK_PATH' is not set" in info.value.error
    assert "environment variable SLACK_PATH" in info.value.error


def test_the_engines_own_settings_are_not_secrets_templates_can_read(tmp_path: Path) -> None:
    environ = {"TRIPWIRE_DATABASE_URL": "postgresql://app:pw-1234@db/tripwire"}
    templates = Templates(Secrets(environ=environ))
    with pytest.raises(TemplateError) as info:
        templates.render("{{ secret('TRIPWIRE_DATABASE_URL') }}", {}, "url")
    assert "one of tripwire's own settings" in info.value.error
    assert "pw-1234" not in info.value.error
    # What the operator puts in the secrets file under any name is theirs to hand out.
    file = tmp_path / "secrets"
    file.write_text("TRIPWIRE_RELAY_TOKEN=relay-5678\n")
    rendered = Templates(Secrets(environ=environ, file=file)).render(
        "{{ secret('TRIPWIRE_RELAY_TOKEN') }}", {}, "url"
    )
    assert rendered == "relay-5678"


def test_a_rendered_url_with_a_secret_is_redacted() -> None:
    secrets = Secrets(environ={"HOOK_TOKEN": "T0KEN-abc-123"})
    url = Templates(secrets).render(
        "https://hooks.example/{{ secret('HOOK_TOKEN') }}?run={{ run }}", {"run": 7}, "url"
    )
    assert url == "https://hooks.example/T0KEN-abc-123?run=7"
    assert secrets.redact(f"POST {url} answered 500") == (
        "POST https://hooks.example/***?run=7 answered 500"
    )
