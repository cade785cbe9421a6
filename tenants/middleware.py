"""Organization context for the admin UI (the API sets its own in OrgScopedAPIView)."""

import uuid

from django.utils.functional import SimpleLazyObject

from rcm.context import org_context, reset_org_id, set_org_id
from rcm.http import client_ip
from rcm.lookups import UserRole
from tenants import selectors, services
from tenants.models import Organization

ADMIN_PREFIX = "/admin/"
# The operator's own account lives in their home organization: changing their password there
# is a write to their own row, which row-level security hides in any other organization.
OWN_ACCOUNT_PATHS = (f"{ADMIN_PREFIX}password_change/",)


class AdminOrgContextMiddleware:
    """Staff work in their home organization; a sys_admin in the one they picked (audited).

    Staff lose the context (and so every admin page) when their home membership or home
    organization is no longer active. ``request.admin_org`` is the organization in context,
    loaded only if a page shows it; ``request.admin_role`` the role the permission table is
    asked with there (rcm.admin): the home membership's, or sys_admin for platform staff.
    """

    SESSION_KEY = "admin_org_id"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        user = request.user
        org_id, request.admin_role = (
            self._org_and_role(request) if user.is_authenticated and user.is_staff else (None, None)
        )
        request.admin_org = SimpleLazyObject(lambda: _organization(org_id))
        token = set_org_id(org_id)
        try:
            if org_id is not None and org_id != user.org_id:
                # Platform staff acting in someone else's organization: one event per request.
                services.platform_act_record(
                    org_id=org_id,
                    actor=user,
                    ip_address=client_ip(request),
                    via="admin",
                    method=request.method,
                    path=request.path,
                )
            return self.get_response(request)
        finally:
            reset_org_id(token)

    def _org_and_role(self, request) -> tuple[uuid.UUID | None, str | None]:
        user = request.user
        if not user.is_superuser:
            role = selectors.auth_home_role(user=user)
            return (user.org_id, role) if role is not None else (None, None)
        picked = request.session.get(self.SESSION_KEY)
        if picked is None or request.path.startswith(OWN_ACCOUNT_PATHS):
            return user.org_id, UserRole.SYS_ADMIN
        picked = uuid.UUID(picked)
        if not selectors.auth_org_is_active(org_id=picked):
            # Deactivated since it was picked: back home rather than into a dead organization.
            del request.session[self.SESSION_KEY]
            return user.org_id, UserRole.SYS_ADMIN
        return picked, UserRole.SYS_ADMIN


def _organization(org_id) -> Organization | None:
    if org_id is None:
        return None
    with org_context(org_id):
        return Organization.objects.filter(pk=org_id).first()
