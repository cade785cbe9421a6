"""The keys of a development platform, generated once and kept under var/.

`make run` (and any process reading ``rcm.settings.base``) needs a Django ``SECRET_KEY`` and a
separate JWT signing key. A key written in the code would be public: anyone could sign a token
for any user id. So the first process to start generates both at random and keeps them in
``var/secrets.json`` (mode 0600, git-ignored with the rest of var/); every later process, the
web server, the worker and beat alike, reads the same file. The environment still wins
(``DJANGO_SECRET_KEY``, ``JWT_SIGNING_KEY``), and production settings require it. The key that
encrypts portal credentials is generated the same way into ``var/credential-keys.json``
(``RCM_CREDENTIAL_KEYS`` wins; production requires it).

Concurrent first starts (the supervisor and a `manage.py shell`, two test sessions) must not
end up with two different keys: each writes a complete file under a name of its own and links
it into place, which succeeds for exactly one of them; the others read the winner's file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KEYS_FILE = "secrets.json"
CREDENTIAL_KEYS_FILE = "credential-keys.json"
KEY_BYTES = 50
UNSAFE_MODE = (
    "{path} may be read by other users (mode {mode:o}); make it private with `chmod 600 {path}`, "
    "or delete it to generate new keys (every session and token is then signed out)."
)
UNREADABLE = "{path} is not a keys file this platform wrote; delete it to generate new keys."


@dataclass(frozen=True)
class Keys:
    """The two keys; ``repr`` leaves them out, so that no traceback or log line prints them."""

    secret_key: str = field(repr=False)
    jwt_signing_key: str = field(repr=False)


def keys_load(*, var_dir: Path) -> Keys:
    """This platform's keys, generated into ``var_dir`` on the first call."""
    path = var_dir / KEYS_FILE
    if not path.exists():
        _create(
            path,
            {
                "secret_key": secrets.token_urlsafe(KEY_BYTES),
                "jwt_signing_key": secrets.token_urlsafe(KEY_BYTES),
            },
        )
    return _read(path)


def credential_keys_load(*, var_dir: Path) -> list[str]:
    """The Fernet key that encrypts portal credentials, generated into ``var_dir`` on the first
    call (a file of its own: the signing keys' file predates it, and two processes adding a
    key to it at once could each encrypt with one the other then overwrote)."""
    from cryptography.fernet import Fernet

    path = var_dir / CREDENTIAL_KEYS_FILE
    if not path.exists():
        _create(path, {"credential_keys": [Fernet.generate_key().decode()]})
    _check_private(path)
    try:
        keys = json.loads(path.read_text())["credential_keys"]
    except (ValueError, KeyError, TypeError):
        raise ImproperlyConfigured(UNREADABLE.format(path=path)) from None
    if not keys or not all(isinstance(key, str) and key for key in keys):
        raise ImproperlyConfigured(UNREADABLE.format(path=path))
    return keys


def _create(path: Path, keys: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    # Created private (O_EXCL, 0600) rather than chmod-ed afterwards: there is no moment in
    # which the keys sit in a file others may read.
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(keys, handle)
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if the name exists: of several processes starting at once, exactly one
        # places its file, and nobody ever sees a half-written one.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ImproperlyConfigured(UNSAFE_MODE.format(path=path, mode=mode))


def _read(path: Path) -> Keys:
    _check_private(path)
    try:
        stored = json.loads(path.read_text())
        keys = Keys(secret_key=stored["secret_key"], jwt_signing_key=stored["jwt_signing_key"])
    except (ValueError, KeyError, TypeError):
        # Not chained: the decoding error could quote the file's text, the keys.
        raise ImproperlyConfigured(UNREADABLE.format(path=path)) from None
    if not (keys.secret_key and keys.jwt_signing_key):
        raise ImproperlyConfigured(UNREADABLE.format(path=path))
    return keys
