"""Every YAML example in the README and the docs is a definitions file that loads as
`tripwire validate` loads it, so an example cannot rot when the format changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tripwire.definitions import load_paths

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class Example:
    """One fenced ```yaml block: where it is and its text."""

    file: Path
    line: int  # the fence's line (1-based); the block's first line is the next
    text: str

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def yaml_examples(page: Path) -> list[Example]:
    """The ```yaml blocks of a Markdown page, with the line each starts on."""
    examples: list[Example] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, language = opening["indent"], opening["info"].strip().split(" ")[0]
        start = index
        while index < len(lines) and lines[index].strip() != "```":
            index += 1
        if language == "yaml":
            body = [line.removeprefix(indent) for line in lines[start:index]]
            examples.append(Example(page, start, "\n".join(body) + "\n"))
        index += 1
    return examples


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = [example for page in PAGES for example in yaml_examples(page)]


def test_the_docs_have_yaml_examples():
    # A change to the fence parsing that found nothing would pass every check below.
    assert len(EXAMPLES) >= 5
    assert any(example.file.name == "README.md" for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_yaml_example_is_a_valid_definitions_file(example: Example, tmp_path: Path):
    file = tmp_path / "example.yaml"
    file.write_text(example.text)
    definitions = load_paths([file])
    errors = [
        f"{example.file.relative_to(ROOT)}:{example.line + (error.line or 1)}: "
        f"{error.field + ': ' if error.field else ''}{error.message}"
        for error in definitions.errors
    ]
    assert not errors, "\n".join(errors)
    defined = (
        definitions.automations
        + definitions.slas
        + definitions.deployments
        + definitions.webhooks
        + definitions.sources
        + definitions.connections
        + definitions.silences
        + definitions.inhibit
    )
    assert defined, (
        f"{example} defines nothing: use ```text for YAML that is not a definitions file"
    )
