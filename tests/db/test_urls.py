from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchyard.core.errors import ConfigError
from branchyard.db.urls import mask_url, parse_url, replace_database


def test_parse_and_render_keep_every_part() -> None:
    url = "postgresql://carlo:s%40cret@localhost:6543/carlo?sslmode=disable"
    parsed = parse_url(url)
    assert (parsed.user, parsed.password, parsed.host, parsed.port, parsed.database,
            parsed.query) == ("carlo", "s@cret", "localhost", 6543, "carlo", "sslmode=disable")
    assert parsed.address == "localhost:6543"
    assert parsed.render() == url


def test_replace_database_keeps_credentials_and_query() -> None:
    url = "postgres://u:p@h/app?sslmode=require"
    assert replace_database(url, "app_feat_x") == "postgres://u:p@h:5432/app_feat_x?sslmode=require"


def test_mask_hides_the_password_only() -> None:
    assert mask_url("mysql://root:hunter2@127.0.0.1:3306/shop") == \
        "mysql://root:****@127.0.0.1:3306/shop"
    assert mask_url("redis://127.0.0.1:6379/3") == "redis://127.0.0.1:6379/3"


def test_not_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        parse_url("just-a-name")


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                      exclude_characters="@/?#[]%"), min_size=1))
def test_a_masked_url_never_shows_the_password(password: str) -> None:
    from urllib.parse import quote

    url = f"postgresql://user:{quote(password, safe='')}@db.local:5432/app"
    assert parse_url(url).password == password
    assert mask_url(url) == "postgresql://user:****@db.local:5432/app"
