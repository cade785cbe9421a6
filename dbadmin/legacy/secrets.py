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

# Words that name a secret wherever a name is matched (a config's keys, a URL's parameters, a
# header list's names), on the name lower-cased without "_" and "-": passwords and pass
# phrases, keys of every kind (``X-Api-Key``, ``AWSAccessKeyId``, Azure's
# ``Ocp-Apim-Subscription-Key``, ``signing_key``), one-time-password seeds, the header values
# that carry a login (``Authorization``, ``Proxy-Authorization``, ``Cookie``), session ids
# (``JSESSIONID``, ``PHPSESSID``) and signatures. Some only at the end of a
# name, where a setting begins with the same word: ``portal_credential`` holds one,
# ``credentialing_mode`` and ``credential_id`` do not; ``cookie_domain``, ``jwt_issuer`` and
# ``authorization_url`` are settings.
_SECRET_WORDS = (
    r"passw(?:or)?d|pwd|passphrase|pass$|secret|apikey|accesskey|privatekey|key$"
    r"|totp|otp(?:seed)?$|authorization$|bearer$|jwt$|cookies?$|sess(?:ion)?id"
    r"|credentials?$|signature$"
)
# A config's keys, at any depth (``auth.Password``, ``headers[0].X-Api-Key``): also a token
# anywhere in the name (``token_url`` goes too).
SECRET_KEY = re.compile(_SECRET_WORDS + r"|token")
# A URL's parameters and a header list's names: a token only at the end of a name (a query's
# ``token_type`` is a setting, ``access_token`` and ``X-Amz-Security-Token`` are not), and the
# short names of signed, keyed and session links (``?sig=``, Firebase's ``?auth=``,
# ``connect.sid``).
URL_SECRET_KEY = re.compile(_SECRET_WORDS + r"|token$|^(?:sig|auth|session)$|(?:^|\.)sid$")
# Names that hold a secret when they hold text or a list of values (``"auth": "Basic …"``,
# ``"auth": ["ops", "pw"]``, a client's user and password), and a section of settings when
# they hold a mapping (``"auth": {"user": …}`` is walked). A number or a flag is a setting,
# and so is text that names a kind of login.
SCALAR_SECRET_KEY = re.compile(r"^(?:auth|session|sid)$")
_LOGIN_KINDS = re.compile(
    r"none|basic|digest|bearer|ntlm|negotiate|kerberos|oauth2?|saml|sso|form|cookie|token"
    r"|apikey|certificate|mtls"
)
# A header or parameter list written as pairs (Postman, HAR): ``{"key": "Authorization",
# "value": "Bearer …"}``; the pair's value goes when its name is a secret's.
_PAIR_NAMES = ("key", "name")
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
        pair_name = _pair_secret_name(value)
        kept = {}
        for key, item in value.items():
            if _is_pair(value) and key in _PAIR_NAMES:
                kept[key] = item  # a pair's name, not a key named "key"
            elif _holds_secret(_normalised(str(key)), item):
                removed.append(f"{path}.{key}")
            elif key == "value" and pair_name:
                removed.append(f"{path}.value ({pair_name})")
            else:
                kept[key] = config_secrets_removed(item, f"{path}.{key}", removed)
        return kept
    if isinstance(value, list):
        return [
            config_secrets_removed(item, f"{path}[{index}]", removed)
            for index, item in enumerate(value)
        ]
    return value


def _holds_secret(name: str, item) -> bool:
    if SECRET_KEY.search(name):
        return True
    if not SCALAR_SECRET_KEY.search(name):
        return False
    if isinstance(item, list):
        return not all(isinstance(element, dict) for element in item)
    return isinstance(item, str) and not _LOGIN_KINDS.fullmatch(_normalised(item.strip()))


def _is_pair(mapping: dict) -> bool:
    return "value" in mapping and any(isinstance(mapping.get(field), str) for field in _PAIR_NAMES)


def _pair_secret_name(pair: dict) -> str:
    """The name of a name-and-value pair whose value is a secret (``Authorization``), or ""."""
    if not _is_pair(pair):
        return ""
    for field in _PAIR_NAMES:
        name = pair.get(field)
        if isinstance(name, str) and URL_SECRET_KEY.search(_normalised(name)):
            return name
    return ""


def url_secrets_removed(url: str, path: str, removed: list[str]) -> str:
    """``url`` without a user name and password (``https://user:pass@host/``) and without the
    query and fragment parameters whose names say they hold a secret (a fragment's parameters
    follow its route, if it has one: ``#/login?access_token=…``). What is kept is kept as it
    was written."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        removed.append(f"{path} (user:password@)")
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    path_kept = "/".join(
        _path_parameters_removed(segment, f"{path} path", removed)
        for segment in parts.path.split("/")
    )
    parts = parts._replace(path=path_kept)
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


def _path_parameters_removed(segment: str, where: str, removed: list[str]) -> str:
    """A path segment without its secret parameters (``/app;jsessionid=…``)."""
    if ";" not in segment:
        return segment
    name, *parameters = segment.split(";")
    kept = [
        parameter
        for parameter in parameters
        if not URL_SECRET_KEY.search(_normalised(unquote_plus(parameter.partition("=")[0])))
    ]
    removed += [
        f"{where} {unquote_plus(parameter.partition('=')[0])}"
        for parameter in parameters
        if parameter not in kept
    ]
    return ";".join([name, *kept])
