"""Env file values: what branchyard writes, python-dotenv, node and sh read back alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchyard.envfiles.files import EnvValueError, format_dotenv, quote_dotenv
from tests.core.dotenvkit import read_back

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

HARD = ["it's", 'say "hi"', "$5", "cost: 5$", "a $ b", "50%", "C:\\path\\to", "a\\", "\\",
        "a\\\\b", "#not a comment", "x #y", "  padded  ", "", " ", "tab\there", "ünïcödé ✓",
        "😀 emoji", "multi\nline", "\nlead", "trail\n", "a=b=c", "semi;colon&amp|pipe",
        "back`tick`", "$(echo pwned)", "'single'", '"double"', "it's \"both\"", "it's $5",
        "${HOME}", "$HOME", "x${IFS}y", "${", "}", "{x}", "~user", "*glob?", "[a]",
        "it's C:\\d", "it's a\\nb", "\u2028sep", "\x85nel", "\x0bvt", "\x0cff", "\x1bescape",
        "k=v\nOTHER=injected", "postgresql://u:p%40ss@127.0.0.1:5432/app_x"]
# Printable text, with the characters each reader treats specially made frequent.
SPECIAL = st.sampled_from(list("'\"$\\#`{}()\n\t =;&|*?!~%:@,./-_"))
VALUES = st.text(st.one_of(SPECIAL, st.characters(min_codepoint=32, max_codepoint=126),
                           st.characters(exclude_categories=("Cs", "Cc"))), max_size=24)


def check_round_trip(tmp: Path, values: list[str]) -> list[str]:
    """Write every writable value to one file and read it back with all three readers;
    return the refused values."""
    written: dict[str, str] = {}
    refused = []
    for value in values:
        try:
            quote_dotenv(value)
        except EnvValueError:
            refused.append(value)
            continue
        written[f"V{len(written)}"] = value
    path = tmp / "values.env"
    path.write_text(format_dotenv(written), encoding="utf-8")
    for reader, got in read_back(path, list(written)).items():
        wrong = {written[k]: v for k, v in got.items() if v != written[k]}
        assert not wrong, f"{reader} read back differently (wanted → got): {wrong}"
    return refused


def test_hard_values_read_back_identically_or_are_refused(tmp_path: Path) -> None:
    refused = check_round_trip(tmp_path, HARD)
    # only what no single dotenv form can give all three readers
    assert refused == ["a\\", "\\", "a\\\\b", "it's \"both\"", "it's $5", "${HOME}",
                       "x${IFS}y", "it's a\\nb"]


def test_a_value_no_reader_agrees_on_is_refused_clearly() -> None:
    with pytest.raises(EnvValueError) as err:
        format_dotenv({"GREETING": "it's $5"})
    assert str(err.value) == (
        "GREETING=\"it's $5\" cannot be written to an env file: it holds both ' and a $ "
        "that sh expands, so python-dotenv, node --env-file and sh would read it "
        "differently")
    assert "--format shell" in err.value.hint


@given(st.lists(VALUES, min_size=40, max_size=160))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_every_written_value_reads_back_identically(tmp_path: Path, values: list[str]) -> None:
    check_round_trip(tmp_path, values)


@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="'\r\0\\")))
def test_values_without_a_quote_or_backslash_are_never_refused(value: str) -> None:
    if "${" not in value:
        quote_dotenv(value)


@given(st.text(st.characters(exclude_categories=("Cs",),
                             exclude_characters="\"`$\\\r\0")))
def test_values_without_double_quote_dollar_or_backslash_are_never_refused(value: str) -> None:
    quote_dotenv(value)
