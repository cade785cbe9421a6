"""The legacy import's secret rules on their own: which names in a config and in a URL hold a
secret, and what stays as it was written (the import's own test covers them in a v3 database)."""

import pytest

from dbadmin.legacy.secrets import config_secrets_removed, url_secrets_removed


def removed_from_config(config: dict) -> tuple[dict, list[str]]:
    removed: list[str] = []
    return config_secrets_removed(config, "config", removed), removed


@pytest.mark.parametrize(
    "key",
    [
        "password", "Passwd", "pwd", "client_secret", "refresh-token", "X-Api-Key",
        "AWSAccessKeyId", "private_key", "totp_seed", "otp", "Authorization",
        "bearer", "jwt", "Cookie", "session_id", "portal_credential", "credentials",
    ],
)  # fmt: skip
def test_a_key_named_as_a_secret_is_left_out_at_any_depth(key):
    config = {"headers": [{key: "s3cr3t", "Accept": "text/html"}], "timeout": 30}
    kept, removed = removed_from_config(config)
    assert kept == {"headers": [{"Accept": "text/html"}], "timeout": 30}
    assert removed == [f"config.headers[0].{key}"]


@pytest.mark.parametrize("key", ["auth", "session", "SID"])
def test_a_short_name_is_a_secret_as_a_value_and_a_section_as_a_mapping(key):
    kept, removed = removed_from_config({key: "Basic b3BzOnB3"})
    assert (kept, removed) == ({}, [f"config.{key}"])
    section = {key: {"user": "ops", "password": "pw", "scopes": ["read"]}}
    kept, removed = removed_from_config(section)
    assert kept == {key: {"user": "ops", "scopes": ["read"]}}
    assert removed == [f"config.{key}.password"]


@pytest.mark.parametrize(
    "key", ["credentialing_mode", "credential_id", "token_url", "keyboard", "author", "sidebar"]
)
def test_settings_that_only_look_alike_are_kept_or_named(key):
    # token_url goes (a key that contains a secret's name goes); the others are settings.
    kept, removed = removed_from_config({key: "x"})
    assert removed == (["config.token_url"] if key == "token_url" else [])
    assert kept == ({} if key == "token_url" else {key: "x"})


@pytest.mark.parametrize(
    ("url", "expected", "named"),
    [
        (
            "https://portal.example/?lang=en&auth=eyJhbGci&sid=77&page=2",
            "https://portal.example/?lang=en&page=2",
            ["url query auth", "url query sid"],
        ),
        (
            "https://s3.example/b/f?AWSAccessKeyId=AKIA1&Expires=9&Signature=abc",
            "https://s3.example/b/f?Expires=9",
            ["url query AWSAccessKeyId", "url query Signature"],
        ),
        (
            "https://portal.example/app#/home?jwt=eyJ0&tab=claims",
            "https://portal.example/app#/home?tab=claims",
            ["url fragment jwt"],
        ),
        (
            "https://portal.example/?token_type=bearer&author=me&session_id=abc",
            "https://portal.example/?token_type=bearer&author=me",
            ["url query session_id"],
        ),
    ],
)
def test_url_parameters_named_as_secrets_are_left_out_and_the_rest_kept_as_written(
    url, expected, named
):
    removed: list[str] = []
    assert url_secrets_removed(url, "url", removed) == expected
    assert removed == named
