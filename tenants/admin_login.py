"""The admin's log-in form: the API's failed-login throttle and audit, and refusals that say
what is true once the password has been proven."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError

from rcm.http import client_ip
from tenants import selectors, services, throttling
from tenants.authentication import INVALID_CREDENTIALS

TOO_MANY_FAILURES = (
    "Too many failed log-ins for this email or from this address; try again in {seconds} seconds."
)
NO_ADMIN_ACCESS = "This account has no access to the admin: ask your organization's administrator."


class AdminLoginForm(AdminAuthenticationForm):
    """Who may open the admin: an active user with ``is_staff`` whose membership of their home
    organization is live (membership and organization both active), as the admin's middleware
    (tenants/middleware.py) requires on every page. A sys_admin needs only ``is_staff``: they
    work in the organization they pick, home or not.

    Failed log-ins count in the same per-email and per-IP counters as the API's token endpoint
    (tenants/throttling.py), so guesses spread over both doors add up; past either limit every
    attempt is refused, the right password too, until the window ends. Each failure is audited
    as the API's are (``auth.login_failed``, email and IP, never the password), and so is each
    success (``auth.login`` in the home organization, ``via`` "admin").

    A wrong password, an unknown email and an inactive account get one generic message; only
    someone who proved the password learns that the account itself may not enter.
    """

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": INVALID_CREDENTIALS,
        "no_admin_access": NO_ADMIN_ACCESS,
    }

    def clean(self):
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is None or not password:
            return self.cleaned_data
        ip = client_ip(self.request)
        wait = throttling.login_retry_after(ip=ip, email=email)
        if wait is not None:
            raise ValidationError(TOO_MANY_FAILURES.format(seconds=wait), code="throttled")
        user = authenticate(self.request, username=email, password=password)
        if user is None:
            services.login_failure_record(
                email=email, ip_address=ip, user=None, reason="credentials", via="admin"
            )
            raise self.get_invalid_login_error()
        role = selectors.auth_home_role(user=user)
        if not _may_open_admin(user, role):
            services.login_failure_record(
                email=email, ip_address=ip, user=user, reason="no_admin_access", via="admin"
            )
            raise ValidationError(self.error_messages["no_admin_access"], code="no_admin_access")
        # Audited here, once the form has decided: the view logs the user in straight after.
        services.login_success_record(
            user=user, org_id=user.org_id, role=role, ip_address=ip, via="admin"
        )
        self.user_cache = user
        return self.cleaned_data

    def get_invalid_login_error(self):
        return ValidationError(self.error_messages["invalid_login"], code="invalid_login")


def _may_open_admin(user, home_role: str | None) -> bool:
    return user.is_active and user.is_staff and (user.is_superuser or home_role is not None)
