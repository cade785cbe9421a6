"""How a caller proves who they are, and for which organization.

* ``EmailBackend`` (Django auth, used by the admin and the token endpoint): finds the user by
  email through the SECURITY DEFINER lookup, since no organization context exists yet.
* ``OrgJWTAuthentication``: a simplejwt access token carrying ``org_id``; the membership
  behind it is re-checked on every request, and its *current* role is the one that counts.
* ``ApiKeyAuthentication``: ``Authorization: Api-Key <key>`` for api_user members; revocation
  and membership are re-checked on every request.
"""

from __future__ import annotations

import functools
import uuid

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from rcm.api.access import OrgAccess
from rcm.api.request_hooks import after_request
from rcm.context import org_context
from rcm.http import client_ip
from rcm.lookups import UserRole
from tenants import selectors, services


# Checking a password against this when the email is unknown keeps the response time the same
# for unknown users and wrong passwords (no account enumeration by timing).
@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import: every process (workers, commands) imports this module,
    # and a password hash costs as much as a log-in.
    return make_password("not-a-real-password")


INVALID_CREDENTIALS = "Invalid email or password."
MEMBERSHIP_GONE = "Your membership of this organization is no longer active."
TOKEN_INVALID = "The token is invalid or expired."
KEY_INVALID = "The API key is invalid or revoked."


def credentials_check(*, email: str, password: str):
    user = selectors.auth_user_by_email(email=email)
    if user is None:
        check_password(password, _dummy_hash())
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user


class EmailBackend(BaseBackend):
    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        return credentials_check(email=email or username or "", password=password or "")

    def get_user(self, user_id):
        try:
            return selectors.auth_user_by_id(user_id=uuid.UUID(str(user_id)))
        except ValueError:
            return None


def token_pair_for(*, user, org_id: uuid.UUID, role: str) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh["org_id"] = str(org_id)
    refresh["role"] = role
    access = refresh.access_token
    return {"access": str(access), "refresh": str(refresh), "org_id": str(org_id), "role": role}


def resolve_access(*, user, org_id: uuid.UUID | None) -> tuple[uuid.UUID, str, bool] | None:
    """The (org, role, platform-staff?) a user may act in: ``org_id`` or their primary org.

    A member acts with their membership's role. A sys_admin may also act in an organization
    they are not a member of (platform support); every such act is audited.
    """
    memberships = selectors.auth_memberships(user_id=user.pk)
    if org_id is None:
        chosen = memberships[0] if memberships else None
        return (chosen.org_id, chosen.role, False) if chosen else None
    for membership in memberships:
        if membership.org_id == org_id:
            return membership.org_id, membership.role, False
    if user.role_id == UserRole.SYS_ADMIN and selectors.auth_org_is_active(org_id=org_id):
        return org_id, UserRole.SYS_ADMIN, True
    return None


def _live_access(*, user_id: uuid.UUID, org_id: uuid.UUID, via: str, api_key_id=None):
    """The caller's access now, or 401: the membership (or sys_admin status) must still hold."""
    with org_context(org_id):
        membership = selectors.membership_active(user_id=user_id, org_id=org_id)
        if membership is not None and membership.user.is_active:
            access = OrgAccess(
                org_id=org_id,
                role=membership.role_id,
                user_id=user_id,
                via=via,
                api_key_id=api_key_id,
            )
            return membership.user, access
    user = selectors.auth_user_by_id(user_id=user_id)
    if (
        via == "jwt"
        and user is not None
        and user.is_active
        and user.role_id == UserRole.SYS_ADMIN
        and selectors.auth_org_is_active(org_id=org_id)
    ):
        access = OrgAccess(
            org_id=org_id,
            role=UserRole.SYS_ADMIN,
            user_id=user_id,
            via=via,
            is_platform_staff=True,
        )
        return user, access
    raise exceptions.AuthenticationFailed(MEMBERSHIP_GONE, code="membership_inactive")


class OrgJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        if raw is None:
            return None
        try:
            token = self.get_validated_token(raw)
        except (InvalidToken, TokenError) as exc:
            raise exceptions.AuthenticationFailed(TOKEN_INVALID, code="token_not_valid") from exc
        try:
            user_id = uuid.UUID(str(token["user_id"]))
            org_id = uuid.UUID(str(token["org_id"]))
        except (KeyError, ValueError) as exc:
            raise exceptions.AuthenticationFailed(TOKEN_INVALID, code="token_not_valid") from exc
        user, access = _live_access(user_id=user_id, org_id=org_id, via="jwt")
        if access.is_platform_staff:
            # After the request's transaction, in one of its own: the audit chain's lock is
            # held from an append to the end of its transaction, so inside the request it would
            # queue every audited write of the platform behind this request; and a refused
            # request must not take the record of its attempt with it.
            record = functools.partial(
                services.platform_act_record,
                org_id=org_id,
                actor=user,
                ip_address=client_ip(request),
                via="api",
                method=request.method,
                path=request.path,
            )
            after_request(request, lambda status: record(status=status))
        return user, access


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate_header(self, request):
        return self.keyword

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword:
            return None
        parts = key.strip().split("_", 2)  # the secret part may itself contain "_"
        if len(parts) != 3 or parts[0] != services.API_KEY_PREFIX:
            raise exceptions.AuthenticationFailed(KEY_INVALID, code="api_key_invalid")
        info = selectors.auth_api_key(prefix=parts[1])
        if info is None or info.revoked or not services.api_key_matches(key.strip(), info.key_hash):
            raise exceptions.AuthenticationFailed(KEY_INVALID, code="api_key_invalid")
        user, access = _live_access(
            user_id=info.user_id, org_id=info.org_id, via="api_key", api_key_id=info.id
        )
        if access.role != UserRole.API_USER:
            raise exceptions.AuthenticationFailed(KEY_INVALID, code="api_key_invalid")
        # After the request's commit, in a short transaction of its own: inside the request it
        # would hold the key's row lock to the end, and every concurrent request with the same
        # key would queue behind it.
        transaction.on_commit(lambda: _touch(org_id=info.org_id, api_key_id=info.id))
        return user, access


def _touch(*, org_id, api_key_id: int) -> None:
    with org_context(org_id):
        services.api_key_touch(api_key_id=api_key_id)


def record_login(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver (admin log-ins): ``last_login`` in the home organization.

    Replaces Django's own receiver, which saves the user with no organization in context: row-
    level security turns that into "no row updated" and a failed log-in.
    """
    services.user_record_login(user=user, org_id=user.org_id)
