"""Secrets a v3 database kept where anyone could read them, left out of what the import writes.

v3 kept portal secrets in clear outside its credentials: in an endpoint's config, in a URL's
user info, query or fragment. V8 shows an endpoint's config and URL to every member of the
organization, and a channel type's URL to every member of every organization, so none of them
may carry one. What is left out is named by its path (never its value) for the report; a
setting lost by mistake is put back by hand, while a secret kept would be read by all.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

# Names of keys that hold a secret, at any depth of a config (``auth.Password``,
# ``headers[0].X-Api-Key``, ``headers.Authorization``, ``AWSAccessKeyId``). Matched on the key
# lower-cased without "_" and "-"; a key that merely contains one of these words goes too
# (``token_url``). A credential only at the end of a name: ``portal_credential`` holds one,
# ``credentialing_mode`` is a setting of the credentialing domain.
SECRET_KEY = re.compile(
    r"passw(?:or)?d|pwd|secret|token|apikey|accesskey|privatekey|totp|otp(?:seed)?$"
    r"|authorization|bearer|jwt|cookie|sessionid|credentials?$"
)
# Names that hold a secret when they hold a value, and are a section of settings when they
# hold a mapping or a list: ``"auth": "Basic …"`` goes, ``"auth": {"user": …}`` is walked.
SCALAR_SECRET_KEY = re.compile(r"^(?:auth|session|sid)$")
# In a URL's parameters, also the short names of signed and keyed links (``?key=…``,
# ``&sig=…``, AWS's ``X-Amz-Signature``, Firebase's ``?auth=…``, a ``?sid=`` session), and a
# token only at the end of a name: a query's ``token_type`` or ``tokenized`` is a setting,
# ``access_token`` and ``X-Amz-Security-Token`` are not.
URL_SECRET_KEY = re.compile(
    r"passw(?:or)?d|pwd|secret|token$|apikey|accesskey|privatekey|totp|otp(?:seed)?$"
    r"|authorization|bearer|jwt|cookie|sessionid|credentials?$"
    r"|^(?:key|sig|auth|session|sid)$|signature$"
)
# The version of these rules, part of the digest of every row they shape: a row imported under
# older rules differs from its map entry, so the next import writes it again without what
# these rules leave out.
RULES_VERSION = "secrets-3"
# A query's parameters, separated as servers split them (";" is the older form of "&").
_PARAMETER_SEPARATOR = re.compile(r"[&;]")


def _normalised(name: str) -> str:
    return re.sub(r"[_-]", "", name.lower())


def config_secrets_removed(value, path: str, removed: list[str]):
    """``value`` without the keys, at any depth, whose names say they hold a secret; the path
    of each removed key is added to ``removed``."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            name = _normalised(str(key))
            if SECRET_KEY.search(name) or (
                SCALAR_SECRET_KEY.search(name) and not isinstance(item, (dict, list))
            ):
                removed.append(f"{path}.{key}")
            else:
                kept[key] = config_secrets_removed(item, f"{path}.{key}", removed)
        return kept
    if isinstance(value, list):
        return [
            config_secrets_removed(item, f"{path}[{index}]", removed)
            for index, item in enumerate(value)
        ]
    return value


def url_secrets_removed(url: str, path: str, removed: list[str]) -> str:
    """``url`` without a user name and password (``https://user:pass@host/``) and without the
    query and fragment parameters whose names say they hold a secret (a fragment's parameters
    follow its route, if it has one: ``#/login?access_token=…``). What is kept is kept as it
    was written."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        removed.append(f"{path} (user:password@)")
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    query = _parameters_removed(parts.query, f"{path} query", removed)
    route, mark, parameters = parts.fragment.partition("?")
    if not mark:  # no route: the fragment is parameters (an OAuth implicit grant's) or a name
        route, parameters = "", parts.fragment
    if mark or "=" in parameters:
        parameters = _parameters_removed(parameters, f"{path} fragment", removed)
        mark = mark if parameters else ""
    return urlunsplit(parts._replace(query=query, fragment=f"{route}{mark}{parameters}"))


def _parameters_removed(text: str, where: str, removed: list[str]) -> str:
    """``text`` (``a=1&b=2``) without its secret parameters; the others as they were written."""
    kept: list[str] = []
    secrets: list[str] = []
    for piece in _PARAMETER_SEPARATOR.split(text):
        name = unquote_plus(piece.partition("=")[0])
        (secrets if URL_SECRET_KEY.search(_normalised(name)) else kept).append(piece)
    removed += [f"{where} {unquote_plus(piece.partition('=')[0])}" for piece in secrets]
    return "&".join(piece for piece in kept if piece) if secrets else text
