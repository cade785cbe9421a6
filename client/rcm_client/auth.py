"""The credentials a client holds: a JWT pair (people) or an API key (machines)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

# Renew an access token this long before it expires (at most; a fifth of its lifetime for a
# short one): a request signed just before expiry can still arrive after it, on a slow
# network or with the client's clock a little behind the server's.
RENEW_MARGIN_S = 30.0


def jwt_claims(token: str) -> dict:
    """The claims of a JWT, unverified: the client only reads when its token expires; the
    server is the one that checks the signature."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ValueError("not a JWT") from exc


@dataclass(frozen=True)
class TokenPair:
    """What ``/auth/token/``, ``/auth/token/refresh/`` and ``/auth/switch-org/`` answer."""

    access: str
    refresh: str
    org_id: str
    role: str
    access_expires_at: float  # epoch seconds
    renew_at: float

    @classmethod
    def from_api(cls, data: dict) -> TokenPair:
        claims = jwt_claims(data["access"])
        expires, issued = float(claims["exp"]), float(claims.get("iat", time.time()))
        margin = min(RENEW_MARGIN_S, (expires - issued) / 5)
        return cls(
            access=data["access"],
            refresh=data["refresh"],
            org_id=str(data["org_id"]),
            role=str(data["role"]),
            access_expires_at=expires,
            renew_at=expires - margin,
        )

    def due(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.renew_at
