"""Sealing a credential's secrets: Fernet (AES-128-CBC with HMAC-SHA256) under the keys in
``settings.CREDENTIAL_KEYS``, newest first. The newest encrypts; every key decrypts, so a new
key is put in front, and the old ones are dropped only after `rotate_credential_keys` has
re-encrypted every credential with it.

Nothing here puts a secret into an exception or a log line: a token that no key opens is
reported by the credential's id alone.
"""

from __future__ import annotations

import functools
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

UNREADABLE = (
    "The secrets of credential {id} cannot be decrypted with the configured keys "
    "(RCM_CREDENTIAL_KEYS): was the key that encrypted them removed?"
)


class CredentialUnreadable(Exception):
    """A stored token that none of the configured keys opens."""


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIAL_KEYS))


def seal(secrets: dict) -> str:
    return _current().encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()


def unseal(token: str, *, credential_id) -> dict:
    try:
        return json.loads(_current().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialUnreadable(UNREADABLE.format(id=credential_id)) from None


def reseal(token: str, *, credential_id) -> str:
    """The same secrets under the newest key (unchanged if it already is)."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable(UNREADABLE.format(id=credential_id)) from None
