"""The one public HTML page of the tenants app: where an invitation mail's link lands.

A person without an account chooses a name and a password (``invitation_redeem``); one with an
account is told to log in and accept under "My invitations". An unknown, spent or expired
token is a 404 with a plain message and writes nothing. Wrong tokens count against the same
per-IP limit as the API's redeem endpoint.
"""

from django import forms
from django.contrib.auth.forms import SetPasswordMixin
from django.template.response import TemplateResponse
from django.urls import path

from rcm.errors import ApplicationError
from rcm.http import client_ip
from tenants import selectors, services, throttling


class RedeemForm(SetPasswordMixin, forms.Form):
    full_name = forms.CharField(max_length=200)
    password1, password2 = SetPasswordMixin.create_password_fields()

    def clean(self):
        cleaned_data = super().clean()
        self.validate_passwords()
        return cleaned_data


def invitation_accept_page(request, token: str):
    ip = client_ip(request)
    if throttling.redeem_retry_after(ip=ip) is not None:
        return _page(request, "invalid", status=429, message=throttling.REDEEM_THROTTLED)
    token_hash = services.secret_token_hash(token)
    invitation = selectors.invitation_open_by_token(token_hash=token_hash)
    if invitation is None:
        throttling.redeem_failure_record(ip=ip)
        return _page(request, "invalid", status=404, message=services.INVITATION_INVALID)
    if selectors.auth_user_by_email(email=invitation.email) is not None:
        return _page(request, "account_exists", message=services.ACCOUNT_EXISTS)
    form = RedeemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_redeem(
                token=token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
                ip_address=ip,
            )
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            return _page(request, "done", email=user.email)
    return _page(request, "form", form=form, org_name=invitation.org.name)


def _page(request, state: str, *, status: int = 200, **context):
    context = {"title": "Your invitation", "site_header": "RCM platform", "state": state, **context}
    return TemplateResponse(request, "invitations/accept.html", context, status=status)


urlpatterns = [
    path("invitations/accept/<str:token>/", invitation_accept_page, name="invitation-accept-page"),
]
