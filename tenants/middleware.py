"""Organization context for the admin UI (the API sets its own in OrgScopedAPIView)."""

from rcm.context import reset_org_id, set_org_id


class AdminOrgContextMiddleware:
    """Staff work in their home organization; a sys_admin in the one they picked (audited)."""

    SESSION_KEY = "admin_org_id"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        user = request.user
        org_id = None
        if user.is_authenticated and user.is_staff:
            org_id = user.org_id
            if user.is_superuser:
                org_id = request.session.get(self.SESSION_KEY, user.org_id)
        token = set_org_id(org_id)
        try:
            return self.get_response(request)
        finally:
            reset_org_id(token)
