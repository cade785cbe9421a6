"""The one base class every v2 endpoint derives from.

It owns authentication (JWT or API key, both checked against a live membership), the
organization context for the request, the role check and the queryset scoping. Subclasses say
*what* they serve (``base_queryset``) and which ``resource`` of the permission table
(rcm/permissions.py) it is; each HTTP method is an action on it (GET view, POST add, PUT and
PATCH change, DELETE delete), unless the view's ``actions`` names another (a POST that
publishes is ``run``; one that only checks is ``view``). The scoping and the role check cannot
be overridden (``__init_subclass__`` refuses).
"""

from __future__ import annotations

import logging
import uuid
from typing import cast

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from rest_framework import generics, permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from rcm import permissions as perms
from rcm.api import errors
from rcm.api.access import OrgAccess
from rcm.api.idempotency import idempotency_claim, idempotency_record
from rcm.api.request_hooks import after_transaction_run
from rcm.context import reset_org_id, set_org_id
from rcm.db import outage

logger = logging.getLogger(__name__)

_PROTECTED = (
    "action_for",
    "get_queryset",
    "initial",
    "finalize_response",
    "get_permissions",
    "get_authenticators",
    "dispatch",
)


# The action an HTTP method takes on a view's resource, unless the view's ``actions`` says.
METHOD_ACTIONS = {
    "GET": perms.VIEW,
    "HEAD": perms.VIEW,
    "OPTIONS": perms.VIEW,
    "POST": perms.ADD,
    "PUT": perms.CHANGE,
    "PATCH": perms.CHANGE,
    "DELETE": perms.DELETE,
}


class RolePermission(permissions.BasePermission):
    message = "Your role in this organization does not allow this action."

    def has_permission(self, request, view) -> bool:
        access = request.auth
        if not isinstance(access, OrgAccess):
            return False
        if not hasattr(view, request.method.lower()):
            return True  # no such handler: DRF answers 405, which is the truth for every role
        return perms.allowed(access.role, view.resource, view.action_for(request.method))


class OrgScopedAPIView(generics.GenericAPIView):
    # The row of the permission table (rcm/permissions.py) this view serves; every concrete
    # view names one (tests/rcm/test_route_security.py walks the URL resolver to make sure).
    resource: str = ""
    # method -> action, where the method's default (METHOD_ACTIONS) is not what it does.
    actions: dict[str, str] = {}
    # Platform catalogues (channel types, lookups) are not tenant-owned; a view serving one
    # says so explicitly rather than silently skipping the scope.
    tenant_scoped: bool = True
    # Response fields never stored with an Idempotency-Key (secrets shown once: an API key,
    # tokens); a replay answers without them.
    idempotency_redact: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _PROTECTED:
            if name in vars(cls):
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); organization scoping belongs to "
                    "OrgScopedAPIView alone. Implement base_queryset() instead."
                )
        for name in ("authentication_classes", "permission_classes"):
            if name in vars(cls):
                raise TypeError(f"{cls.__name__} sets {name}; OrgScopedAPIView owns them.")

    permission_classes = [permissions.IsAuthenticated, RolePermission]

    @classmethod
    def action_for(cls, method: str) -> str:
        # An unknown method is a view: DRF answers it 405 once the caller may see the route.
        return cls.actions.get(method, METHOD_ACTIONS.get(method, perms.VIEW))

    @property
    def access(self) -> OrgAccess:
        # What every authentication class sets (rcm.api.access); IsAuthenticated lets no
        # unauthenticated caller this far.
        return cast(OrgAccess, self.request.auth)

    @property
    def org_id(self) -> uuid.UUID:
        return self.access.org_id

    def validated(self, serializer_class, *, partial: bool = False) -> dict:
        """The request body checked by an input serializer (400 with field details if not)."""
        serializer = serializer_class(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def validated_query(self, serializer_class) -> dict:
        """The query string checked by a filter serializer (400 naming the bad parameter)."""
        serializer = serializer_class(data=self.request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def list_response(self, output_class, queryset=None):
        """One cursor page of the scoped queryset, serialized."""
        queryset = self.get_queryset() if queryset is None else queryset
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(output_class(page, many=True).data)

    def base_queryset(self):
        """The rows this endpoint serves, before scoping. Override this."""
        raise ImproperlyConfigured(f"{type(self).__name__} must implement base_queryset().")

    def get_queryset(self):
        queryset = self.base_queryset()
        if not self.tenant_scoped:
            return queryset
        manager = queryset.model._default_manager
        if not hasattr(manager, "scope"):
            raise ImproperlyConfigured(
                f"{queryset.model.__name__} has no tenant-scoped manager; set tenant_scoped = "
                "False only for platform catalogues."
            )
        return manager.scope(queryset, self.org_id)

    def initial(self, request, *args, **kwargs):
        self._org_token = None
        self._idempotency_key_id = None
        # Authentication runs first (inside super().initial) and resolves the organization;
        # only then is the context set, so nothing before it can read tenant rows.
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, OrgAccess):
            self._org_token = set_org_id(request.auth.org_id)
            self._idempotency_key_id = idempotency_claim(
                request=request, org_id=request.auth.org_id, user_id=request.auth.user_id
            )

    def finalize_response(self, request, response, *args, **kwargs):
        key_id = getattr(self, "_idempotency_key_id", None)
        if key_id is not None and response.status_code < 400:
            idempotency_record(key_id=key_id, response=response, redact=self.idempotency_redact)
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(response, Response):
            # One error shape, in JSON, whatever the client accepts (a text/csv download's
            # 404 included, rcm/api/renderers.py).
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        if getattr(self, "_org_token", None) is not None:
            token, self._org_token = self._org_token, None
            reset_org_id(token)
        return response

    def initialize_request(self, request, *args, **kwargs):
        request = super().initialize_request(request, *args, **kwargs)
        request.after_transaction = []  # rcm/api/request_hooks.py
        return request

    def dispatch(self, request, *args, **kwargs):
        # Every request is one transaction: a failure leaves the database as it was, and the
        # organization setting is applied once for it.
        # DRF's own rollback acts only under ATOMIC_REQUESTS, which we do not use (the
        # transaction opens here, around authentication), so an error response rolls back here.
        status = 500  # unless a response says otherwise: an exception DRF does not answer
        try:
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)
                status = response.status_code
                if status >= 400:
                    transaction.set_rollback(True)
                return response
        except DatabaseError as exc:
            # Opening the transaction, or anything in it, found the database out of reach.
            if not outage.is_unreachable(exc):
                raise
            logger.warning(
                "%s %s: the database is unreachable (%s)", request.method, request.path, exc
            )
            status = 503
            return errors.database_unavailable()
        finally:
            # An exception DRF does not answer skips finalize_response: the context must not
            # outlive the request on this thread all the same.
            token, self._org_token = getattr(self, "_org_token", None), None
            if token is not None:
                reset_org_id(token)
            after_transaction_run(getattr(self, "request", None), status)
