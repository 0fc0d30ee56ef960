"""The README's Guarantees name tests that exist: every `file::test` (and each
`::test` after it, in the same file) is a test function in that file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def named_tests() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Guarantees"):]
    found: list[tuple[str, str]] = []
    for row in section.splitlines():
        current = ""
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)", row):
            current = path or current
            if current:
                found.append((current, name))
    return found


def test_every_test_the_guarantees_name_exists() -> None:
    named = named_tests()
    assert len(named) > 50
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.M)]
    assert missing == []
