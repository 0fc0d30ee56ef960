"""Property tests for the one derivation surface."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from branchyard.core.identity import (
    DNS_LABEL_MAX,
    SLUG_MAX,
    compose_project_name,
    derive_identity,
    slug_for,
    subdomain_for,
    worktree_url,
)

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
names = st.text(min_size=1, max_size=260)
branchy = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,250}", fullmatch=True)


@given(st.one_of(names, branchy))
@settings(max_examples=1000)
def test_slug_is_a_safe_identifier_that_fits_a_prefixed_postgres_name(name: str) -> None:
    slug = slug_for(name)
    assert SLUG_RE.match(slug), slug
    assert len(slug.encode()) <= SLUG_MAX
    assert len(f"{'p' * 16}_{slug}".encode()) <= 63
    assert slug == slug_for(name)  # deterministic


@given(st.one_of(names, branchy), st.sets(st.text(max_size=70), max_size=5))
@settings(max_examples=1000)
def test_subdomain_is_a_dns_label_not_taken(name: str, taken: set[str]) -> None:
    label = subdomain_for(name, taken)
    assert LABEL_RE.match(label), label
    assert len(label) <= DNS_LABEL_MAX
    assert label not in taken
    assert label == subdomain_for(name, taken)


@given(branchy, branchy)
@settings(max_examples=300)
def test_distinct_names_get_distinct_slugs(a: str, b: str) -> None:
    if a != b:
        assert slug_for(a) != slug_for(b)


@given(branchy)
@settings(max_examples=200)
def test_compose_project_name_is_valid(name: str) -> None:
    assert re.match(r"^[a-z0-9][a-z0-9_-]*$", compose_project_name("My Repo", slug_for(name)))


def test_names_that_sanitize_alike_get_different_slugs_and_subdomains() -> None:
    first = derive_identity("feat/a-b")
    second = derive_identity("feat/a_b", taken_subdomains={first.subdomain},
                             taken_indexes={first.index})
    assert first.slug != second.slug
    assert first.slug.startswith("feat_a_b_") and second.slug.startswith("feat_a_b_")
    assert first.subdomain == "feat-a-b"
    assert second.subdomain.startswith("feat-a-b-") and second.subdomain != first.subdomain
    assert (first.index, second.index) == (1, 2)


def test_case_only_differences_get_different_slugs() -> None:
    assert slug_for("Feature/X") != slug_for("feature/x")


def test_unicode_and_long_names_are_valid_and_deterministic() -> None:
    assert slug_for("fix/überlänge-ñ").startswith("fix_uberlange_n_")
    assert SLUG_RE.match(slug_for("功能/登录"))
    assert slug_for("功能/登录").startswith("wt_")
    long = "feature/" + "x" * 240
    assert len(slug_for(long)) <= SLUG_MAX and slug_for(long) == slug_for(long)
    assert len(subdomain_for(long)) <= DNS_LABEL_MAX


def test_name_starting_with_digits_still_starts_with_a_letter() -> None:
    assert slug_for("123-fix").startswith("fix_")
    assert subdomain_for("123-fix") == "123-fix"


def test_urls() -> None:
    assert worktree_url("feat-x", "myapp") == "http://feat-x.myapp.localhost:1355"
    assert worktree_url(None, "myapp", port=443, https=True) == "https://myapp.localhost"
