"""Signing keys: generated once per var/ and shared, private, never in the repository; the
environment wins; production requires it; a token signed with any other key is refused."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from datetime import timedelta

import jwt
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework.test import APIClient

from rcm import embedded, keys
from rcm.settings.base import CREDENTIAL_KEYS_REQUIRED, KEYS_REQUIRED
from tests.conftest import wait_for

ME_URL = "/api/v2/organizations/current/"


def test_the_first_load_generates_private_keys_and_later_loads_read_them(tmp_path):
    first = keys.keys_load(var_dir=tmp_path)
    second = keys.keys_load(var_dir=tmp_path)
    assert first == second
    assert first.secret_key != first.jwt_signing_key
    assert len(first.jwt_signing_key) >= 50
    assert stat.S_IMODE((tmp_path / keys.KEYS_FILE).stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == [keys.KEYS_FILE]  # no draft left
    assert first.secret_key not in repr(first) and first.jwt_signing_key not in repr(first)


def test_each_var_dir_gets_keys_of_its_own(tmp_path):
    assert keys.keys_load(var_dir=tmp_path / "one") != keys.keys_load(var_dir=tmp_path / "two")


CONCURRENT_LOAD = """
import pathlib, sys, time
from rcm import keys
go = pathlib.Path(sys.argv[1]) / "go"
(pathlib.Path(sys.argv[1]) / f"ready-{sys.argv[2]}").touch()
while not go.exists():
    time.sleep(0.001)
loaded = keys.keys_load(var_dir=pathlib.Path(sys.argv[1]) / "var")
print(loaded.secret_key + " " + loaded.jwt_signing_key)
"""


def test_concurrent_first_starts_agree_on_one_pair_of_keys(tmp_path):
    starters = [
        subprocess.Popen(  # noqa: S603 - our interpreter, our script
            [sys.executable, "-c", CONCURRENT_LOAD, str(tmp_path), str(number)],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )
        for number in range(8)
    ]
    try:
        # Every interpreter has started and waits at the line, or one has died on the way.
        wait_for(
            lambda: (
                len(list(tmp_path.glob("ready-*"))) == len(starters)
                or any(starter.poll() is not None for starter in starters)
            ),
            timeout=60,
        )
    finally:
        (tmp_path / "go").touch()  # never leaves the others waiting, whatever happened
    printed = {starter.communicate(timeout=30)[0].strip() for starter in starters}
    assert all(starter.returncode == 0 for starter in starters)
    stored = keys.keys_load(var_dir=tmp_path / "var")
    assert printed == {f"{stored.secret_key} {stored.jwt_signing_key}"}


def test_a_keys_file_others_may_read_is_refused(tmp_path):
    keys.keys_load(var_dir=tmp_path)
    (tmp_path / keys.KEYS_FILE).chmod(0o644)
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        keys.keys_load(var_dir=tmp_path)


def test_the_development_keys_are_git_ignored_and_in_no_tracked_file():
    # Importing the settings generated them (the test settings then put test keys over them).
    generated = keys.keys_load(var_dir=embedded.default_var_dir().resolve())
    path = embedded.default_var_dir().resolve() / keys.KEYS_FILE
    git = ["git", "-C", str(settings.BASE_DIR)]
    if path.is_relative_to(settings.BASE_DIR):  # RCM_VAR_DIR may put var/ outside it
        assert subprocess.run([*git, "check-ignore", "-q", str(path)], check=False).returncode == 0
    for key in (generated.secret_key, generated.jwt_signing_key):
        # -e: a generated key may begin with "-", which git would read as an option (exit 129).
        found = subprocess.run([*git, "grep", "-q", "-F", "-e", key], check=False).returncode
        assert found == 1, f"git grep exited {found}"  # 1: no match (0 would be a leak)


# -- the settings ----------------------------------------------------------------------------

PRINT_KEYS = """
import hashlib, django
from django.conf import settings
django.setup()
for key in (settings.SECRET_KEY, settings.SIMPLE_JWT["SIGNING_KEY"]):
    print(hashlib.sha256(key.encode()).hexdigest())
"""


def _settings_keys(tmp_path, module: str = "rcm.settings.base", **extra):
    """The settings' two keys as a new process sees them (hashed: the keys are never printed)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name
        not in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "RCM_GENERATE_KEYS", "RCM_CREDENTIAL_KEYS")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE=module,
        RCM_VAR_DIR=str(tmp_path),
        # The servers this session uses: the child must not start embedded ones of its own.
        DATABASE_URL=settings.DATABASE_URL,
        DATABASE_OWNER_URL=settings.DATABASE_OWNER_URL,
        REDIS_URL=settings.REDIS_URL,
        **extra,
    )
    return subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", PRINT_KEYS],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_development_settings_use_the_generated_keys(tmp_path):
    loaded = _settings_keys(tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    stored = json.loads((tmp_path / keys.KEYS_FILE).read_text())
    expected = [_digest(stored["secret_key"]), _digest(stored["jwt_signing_key"])]
    assert loaded.stdout.split() == expected
    # Another process (the worker, beat) reads the same keys.
    assert _settings_keys(tmp_path).stdout.split() == expected


def test_the_environment_wins_over_the_generated_keys(tmp_path):
    keys.keys_load(var_dir=tmp_path)
    loaded = _settings_keys(tmp_path, DJANGO_SECRET_KEY="from-env-1", JWT_SIGNING_KEY="from-env-2")
    assert loaded.stdout.split() == [_digest("from-env-1"), _digest("from-env-2")]
    only_jwt = _settings_keys(tmp_path, JWT_SIGNING_KEY="from-env-2")
    stored = json.loads((tmp_path / keys.KEYS_FILE).read_text())
    assert only_jwt.stdout.split() == [_digest(stored["secret_key"]), _digest("from-env-2")]


def test_production_requires_both_keys_and_generates_none(tmp_path):
    refused = _settings_keys(tmp_path, "rcm.settings.production", DJANGO_SECRET_KEY="s" * 40)
    assert refused.returncode != 0
    assert KEYS_REQUIRED in refused.stderr
    assert not (tmp_path / keys.KEYS_FILE).exists()
    short = _settings_keys(
        tmp_path,
        "rcm.settings.production",
        DJANGO_SECRET_KEY="s" * 40,
        JWT_SIGNING_KEY="short",
        RCM_CREDENTIAL_KEYS=Fernet.generate_key().decode(),
    )
    assert "JWT_SIGNING_KEY must be at least 32 characters in production." in short.stderr
    signing = {"DJANGO_SECRET_KEY": "s" * 40, "JWT_SIGNING_KEY": "j" * 40}
    no_credential_key = _settings_keys(tmp_path, "rcm.settings.production", **signing)
    assert CREDENTIAL_KEYS_REQUIRED in no_credential_key.stderr
    assert not (tmp_path / keys.CREDENTIAL_KEYS_FILE).exists()
    accepted = _settings_keys(
        tmp_path,
        "rcm.settings.production",
        RCM_CREDENTIAL_KEYS=Fernet.generate_key().decode(),
        **signing,
    )
    assert accepted.stdout.split() == [_digest("s" * 40), _digest("j" * 40)]


def test_credential_keys_are_generated_once_and_a_bad_one_is_refused_by_position(tmp_path):
    assert _settings_keys(tmp_path).returncode == 0
    generated = keys.credential_keys_load(var_dir=tmp_path)
    assert len(generated) == 1 and Fernet(generated[0])
    assert stat.S_IMODE((tmp_path / keys.CREDENTIAL_KEYS_FILE).stat().st_mode) == 0o600
    assert keys.credential_keys_load(var_dir=tmp_path) == generated
    bad = "not-a-fernet-key-at-all"
    refused = _settings_keys(tmp_path, RCM_CREDENTIAL_KEYS=f"{generated[0]},{bad}")
    assert refused.returncode != 0
    assert "RCM_CREDENTIAL_KEYS: key 2 is not a Fernet key" in refused.stderr
    assert bad not in refused.stderr


# -- forged tokens ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    [
        "secret-secret-secret-secret-secret-secret",
        "dev-only-insecure-signing-key-for-local-use",
        "change-me-in-production-change-me-in-production",
        "use-the-secret-key-instead",
    ],
)
def test_a_token_signed_with_any_other_key_is_refused(sys_admin, org_b, key):
    if key == "use-the-secret-key-instead":
        key = settings.SECRET_KEY  # the JWT key is a separate one
    now = timezone.now()
    claims = {
        "token_type": "access",
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iat": int(now.timestamp()),
        "jti": "forged",
        "user_id": str(sys_admin.pk),
        "org_id": str(org_b.id),
        "role": "sys_admin",
    }
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt.encode(claims, key, 'HS256')}")
    response = client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
    # The same claims signed with the configured key get in: the key is what is refused.
    signed = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], "HS256")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed}")
    assert client.get(ME_URL).status_code == 200
