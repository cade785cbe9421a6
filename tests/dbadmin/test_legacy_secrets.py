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
        "password", "Passwd", "pwd", "passphrase", "keystore_pass", "client_secret",
        "refresh-token", "X-Api-Key", "X-Auth-Key", "Ocp-Apim-Subscription-Key",
        "x-functions-key", "signing_key", "AWSAccessKeyId", "private_key", "totp_seed", "otp",
        "Authorization", "Proxy-Authorization", "bearer", "jwt", "Cookie", "Set-Cookie",
        "session_id", "JSESSIONID", "portal_credential", "credentials", "Signature",
    ],
)  # fmt: skip
def test_a_key_named_as_a_secret_is_left_out_at_any_depth(key):
    config = {"headers": [{key: "s3cr3t", "Accept": "text/html"}], "timeout": 30}
    kept, removed = removed_from_config(config)
    assert kept == {"headers": [{"Accept": "text/html"}], "timeout": 30}
    assert removed == [f"config.headers[0].{key}"]


@pytest.mark.parametrize(
    "key",
    [
        "credentialing_mode", "credential_id", "credential_type", "keyboard_layout", "author",
        "authority", "auth_url", "authorization_url", "oauth_scope", "sidebar",
        "session_timeout", "cookie_domain", "jwt_issuer", "bearer_format",
    ],
)  # fmt: skip
def test_settings_that_only_look_like_secrets_are_kept(key):
    assert removed_from_config({key: "x"}) == ({key: "x"}, [])


def test_a_token_anywhere_in_a_config_key_goes():
    assert removed_from_config({"token_url": "https://idp/token"}) == ({}, ["config.token_url"])


@pytest.mark.parametrize("key", ["auth", "session", "SID"])
def test_a_short_name_holds_a_secret_as_text_or_values_and_settings_as_a_mapping(key):
    for secret in ("Basic b3BzOnB3", ["ops", "pw"]):  # a header's value, a client's auth pair
        assert removed_from_config({key: secret}) == ({}, [f"config.{key}"])
    section = {key: {"user": "ops", "password": "pw", "scopes": ["read"]}}
    kept, removed = removed_from_config(section)
    assert kept == {key: {"user": "ops", "scopes": ["read"]}}
    assert removed == [f"config.{key}.password"]
    # A flag, a number or the name of a kind of login is a setting.
    for setting in (True, 3600, "basic", "OAuth2", "none"):
        assert removed_from_config({key: setting}) == ({key: setting}, [])


def test_a_header_list_of_pairs_keeps_its_names_and_loses_the_secrets_values():
    headers = [
        {"key": "Authorization", "value": "Bearer eyJ0"},
        {"key": "Accept", "value": "text/html"},
        {"name": "X-Api-Key", "value": "k-123"},
    ]
    kept, removed = removed_from_config({"headers": headers})
    assert kept["headers"] == [
        {"key": "Authorization"},
        {"key": "Accept", "value": "text/html"},
        {"name": "X-Api-Key"},
    ]
    assert removed == [
        "config.headers[0].value (Authorization)",
        "config.headers[2].value (X-Api-Key)",
    ]


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
        (
            "https://api.example/v1?PHPSESSID=1&connect.sid=2&subscription-key=3&auth_key=4&q=x",
            "https://api.example/v1?q=x",
            [
                "url query PHPSESSID",
                "url query connect.sid",
                "url query subscription-key",
                "url query auth_key",
            ],
        ),
        (
            "https://portal.example/app;jsessionid=ABC123/claims;view=full?lang=en",
            "https://portal.example/app/claims;view=full?lang=en",
            ["url path jsessionid"],
        ),
    ],
)
def test_url_parameters_named_as_secrets_are_left_out_and_the_rest_kept_as_written(
    url, expected, named
):
    removed: list[str] = []
    assert url_secrets_removed(url, "url", removed) == expected
    assert removed == named
