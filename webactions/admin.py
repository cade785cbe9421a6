"""Portal credentials in the admin: metadata shown, secrets typed in and never shown back;
ad-hoc web actions and the screenshots of portal pages, read-only.

The secret inputs are empty on every page load (a password input that does not render its
value); left empty on a change they keep the stored secrets, filled they replace them all
(a rotation). The access log is read-only.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from rcm.admin import (
    ReadOnlyTenantAdmin,
    RowByRowDelete,
    TenantAdmin,
    adopt,
    changes,
    counted,
    fresh,
    pretty_json,
)
from rcm.context import require_org_id
from rcm.errors import ApplicationError
from rcm.http import client_ip
from tenants.models import Endpoint
from webactions import selectors
from webactions.models import (
    WEB_ACTION_ACTIVE,
    CredentialAccessLog,
    PortalCredential,
    WebAction,
    WebScreenshot,
)
from webactions.services import attempts, web_actions
from webactions.services import credentials as credential_services

# Every secret field of every type, as the form's write-only inputs.
SECRET_INPUTS = ("username", "password", "totp_seed", "token", "client_id", "client_secret")
SECRET_TEXT_INPUTS = ("token_url", "scope")


def _secret_input(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=credential_services.MAX_SECRET_CHARS,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Write-only: never shown again. On a change, leave every secret empty to keep the "
            "stored ones, or type them all anew."
        ),
    )


class CredentialForm(forms.ModelForm):
    # Declared, not generated: a generated field would ask the endpoints' manager for its
    # choices at import, outside any organization (it fails closed). Filled per request below.
    endpoint = forms.ModelChoiceField(queryset=Endpoint.objects.unscoped().none())
    username = _secret_input("Username")
    password = _secret_input("Password")
    totp_seed = _secret_input("TOTP seed (base32)")
    token = _secret_input("Token")
    client_id = _secret_input("OAuth client id")
    client_secret = _secret_input("OAuth client secret")
    token_url = forms.URLField(label="OAuth token URL", required=False, assume_scheme="https")
    scope = forms.CharField(label="OAuth scope", required=False, max_length=500)

    class Meta:
        model = PortalCredential
        fields = ("endpoint", "name", "account_id", "credential_type", "expires_at", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The organization's own endpoints only (the manager scopes to the context). A
        # read-only view of the page (a role that may only look) has no inputs at all.
        if "endpoint" in self.fields:
            self.fields["endpoint"].queryset = Endpoint.objects.all()
        if self.instance.pk:
            # Fixed once stored: another endpoint or type is another credential.
            for name in ("endpoint", "credential_type"):
                if name in self.fields:
                    self.fields[name].disabled = True

    def secrets(self) -> dict | None:
        """The typed secrets of the credential's type, or None when none was typed."""
        typed = {
            name: self.cleaned_data[name]
            for name in (*SECRET_INPUTS, *SECRET_TEXT_INPUTS)
            if self.cleaned_data.get(name)
        }
        return typed or None

    def clean(self):
        cleaned = super().clean()
        secrets = self.secrets()
        if secrets is None and not self.instance.pk:
            raise ValidationError("Type the credential's secrets.")
        if secrets is not None and cleaned.get("credential_type"):
            try:
                credential_services.secrets_check(
                    credential_type=cleaned["credential_type"], secrets=secrets
                )
            except ApplicationError as error:
                problems = error.details.get("secrets", {})
                raise ValidationError(
                    [
                        f"{field}: {message}"
                        for field, found in problems.items()
                        for message in found
                    ]
                ) from None
        return cleaned


@admin.register(PortalCredential)
class PortalCredentialAdmin(RowByRowDelete, TenantAdmin):
    """This organization's portal logins. Secrets go in through the form and never come out."""

    resource = "portal_credential"
    form = CredentialForm
    exclude = ("encrypted_credential",)
    readonly_fields = (
        "last_validated_at",
        "validation_error",
        "last_rotation_at",
        "rotation_status",
        "created_by",
        "created_at",
        "updated_at",
    )
    list_display = ("name", "endpoint", "credential_type", "is_active", "rotation_status")
    list_select_related = ("endpoint",)
    list_filter = ("credential_type", "is_active", "rotation_status")
    search_fields = ("name", "account_id")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # Someone who may only look gets no empty secret inputs to look at.
            secret = {*SECRET_INPUTS, *SECRET_TEXT_INPUTS}
            fields = [name for name in fields if name not in secret]
        return fields

    def save_model(self, request, obj, form, change):
        secrets = form.secrets()
        if not change:
            credential = credential_services.credential_create(
                org_id=require_org_id(),
                actor=request.user,
                endpoint_id=form.cleaned_data["endpoint"].pk,
                name=form.cleaned_data["name"],
                account_id=form.cleaned_data["account_id"],
                credential_type=form.cleaned_data["credential_type"],
                secrets=secrets,
                expires_at=form.cleaned_data["expires_at"],
            )
            adopt(obj, credential)
            return
        metadata = {
            name: value
            for name, value in changes(form).items()
            if name in ("name", "account_id", "expires_at", "is_active")
        }
        credential = credential_services.credential_update(
            credential=fresh(obj), actor=request.user, **metadata
        )
        if secrets is not None:
            credential = credential_services.credential_rotate(
                credential=credential, actor=request.user, secrets=secrets
            )
        adopt(obj, credential)

    def delete_model(self, request, obj):
        credential_services.credential_delete(credential=obj, actor=request.user)


@admin.register(CredentialAccessLog)
class CredentialAccessLogAdmin(ReadOnlyTenantAdmin):
    """Every access to a credential's secrets, kept after the credential is deleted."""

    resource = "credential_access_log"
    fields = (
        "created_at",
        "credential_id",
        "access_type",
        "actor_user",
        "actor_run_id",
        "success",
        "error",
    )
    readonly_fields = fields
    list_display = fields[:-1]  # all but the error, too long for a column
    list_filter = ("access_type", "success")
    list_select_related = ("actor_user",)


# -- ad-hoc web actions and screenshots -------------------------------------------------------


def _picture(screenshot: WebScreenshot) -> str:
    url = reverse("admin:webactions_webscreenshot_image", args=[screenshot.pk])
    return format_html(
        '<a href="{}"><img src="{}" alt="{}" style="max-width: 480px; border: 1px solid #ccc"></a>',
        url,
        url,
        f"{screenshot.name} ({screenshot.reason}) at {screenshot.page}",
    )


@admin.register(WebAction)
class WebActionAdmin(ReadOnlyTenantAdmin):
    """Action lists run once through the API: how each action went, what was read, and the
    pictures taken (each picture shown is an audited access)."""

    resource = "web_action"
    fields = (
        "endpoint",
        "credential",
        "status",
        "label",
        "attempt",
        "max_attempts",
        "duration_ms",
        "error_kind",
        "error",
        "results_table",
        "outputs_shown",
        "screenshots_shown",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    list_display = ("id", "endpoint", "status", "label", "attempt", "duration_ms", "created_at")
    list_filter = ("status",)
    list_select_related = ("endpoint",)
    actions = ("cancel",)

    @admin.display(description="Actions")
    def results_table(self, obj):
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style="white-space: '
            'nowrap">{} ms</td><td style="overflow-wrap: anywhere">{}</td></tr>',
            (
                (
                    result["phase"],
                    result["action"],
                    result["tool"],
                    result["target"],
                    result["resolved"],
                    result["duration_ms"],
                    "ok" if result["success"] else f"{result['error_kind']}: {result['error']}",
                )
                for result in obj.results
            ),
        )
        return format_html(
            "<table><tr><th>Phase</th><th>#</th><th>Tool</th>"
            "<th>Target</th><th>Found as</th><th>Took</th><th>Result</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="Outputs")
    def outputs_shown(self, obj):
        return pretty_json(obj.outputs)

    @admin.display(description="Screenshots")
    def screenshots_shown(self, obj):
        shots = selectors.web_action_screenshots(web_action=obj)
        return format_html_join(
            "",
            '<figure style="margin: 0 0 1em">{}<figcaption>{} ({}, attempt {}) at {}'
            "</figcaption></figure>",
            ((_picture(s), s.name, s.reason, s.attempt, s.page) for s in shots),
        )

    @admin.action(description="Cancel the selected web actions", permissions=("run",))
    def cancel(self, request, queryset):
        active = queryset.filter(status__in=WEB_ACTION_ACTIVE)
        for web_action in active:
            web_actions.web_action_cancel(web_action=web_action)
        cancelled = counted(len(active), "web action")
        self.message_user(request, f"Cancelled {cancelled}.", messages.SUCCESS)


@admin.register(WebScreenshot)
class WebScreenshotAdmin(ReadOnlyTenantAdmin):
    """Pictures of portal pages (PHI): kept WEB_SCREENSHOT_RETENTION_DAYS; each picture shown
    here is an audit event, like one fetched through the API."""

    resource = "web_screenshot"
    fields = ("picture", "name", "reason", "page", "attempt", "web_action", "node_run", "dom")
    readonly_fields = fields
    list_display = ("id", "name", "reason", "page", "web_action", "node_run", "created_at")
    list_select_related = ("web_action", "node_run")
    list_filter = ("reason",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("image")

    @admin.display(description="Picture")
    def picture(self, obj):
        return _picture(obj)

    @admin.display(description="Page (DOM, masked)")
    def dom(self, obj):
        return format_html("<pre>{}</pre>", obj.masked_dom[:20_000])

    def get_urls(self):
        image = path(
            "<int:pk>/image/",
            self.admin_site.admin_view(self.image_view),
            name="webactions_webscreenshot_image",
        )
        return [image, *super().get_urls()]

    def image_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        screenshot = get_object_or_404(self.get_queryset(request), pk=pk)
        image = attempts.screenshot_image(
            screenshot=screenshot, actor=request.user, ip_address=client_ip(request)
        )
        response = HttpResponse(image, content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        return response
