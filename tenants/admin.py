"""The admin UI for operators: every page shows the organization in context and nothing else.

Staff work in their home organization, a sys_admin in the one picked on the switch page
(tenants/middleware.py sets the context and audits platform access). Querysets go through the
models' fail-closed managers, so the manager and row-level security agree on what is visible.
Writes the API audits (organization, memberships, endpoints, API keys) go through the same
services here. Platform catalogues (lookups, channel types) are read-only except to sys_admin.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.forms import SetPasswordMixin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from rest_framework import serializers

from rcm.admin import (
    LookupAdmin,
    PlatformCatalogueAdmin,
    RowByRowDelete,
    TenantAdmin,
    admin_role,
    adopt,
    changes,
    counted,
    fresh,
    is_platform_staff,
    refusal_by_pk,
    rows_act,
)
from rcm.context import current_org_id, org_context, require_org_id
from rcm.errors import ApplicationError
from rcm.http import client_ip
from rcm.lookups import UserRole
from rcm.permissions import role_grantable
from tenants import selectors, services
from tenants.admin_login import AdminLoginForm
from tenants.middleware import AdminOrgContextMiddleware
from tenants.models import (
    ApiKey,
    AuditEvent,
    ChannelAuthTypeLu,
    ChannelType,
    Endpoint,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    OrgTypeLu,
    User,
    UserRoleLu,
)
from tenants.serializers import EndpointConfigInput

EMAIL_TAKEN = "A user with this email already exists."
PASSWORDS_BOTH = "Enter the password twice, or leave both fields empty."
ORG_NOT_FOUND = "No active organization has this id."

admin.site.login_form = AdminLoginForm  # the API's throttle and audit (tenants/admin_login.py)
# Roles live on memberships; app_user has no groups or Django permissions to manage.
admin.site.unregister(Group)


def _assignable_roles(request):
    """Roles this user may hand out here: none above their own (rcm.permissions)."""
    role = admin_role(request)
    return UserRoleLu.objects.filter(
        is_active=True,
        pk__in=[
            value for value in UserRole.ordered() if role_grantable(granter_role=role, role=value)
        ],
    )


class RoleChoicesMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "role":
            kwargs["queryset"] = _assignable_roles(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# -- forms ---------------------------------------------------------------------------------


def _optional_password_fields():
    fields = SetPasswordMixin.create_password_fields()
    for field in fields:
        field.required = False
    return fields


class PasswordFormMixin(SetPasswordMixin):
    """Two password inputs, both empty or both the same; the value is never rendered back."""

    def clean(self):
        cleaned_data = super().clean()
        if bool(cleaned_data.get("password1")) != bool(cleaned_data.get("password2")):
            self.add_error("password2", PASSWORDS_BOTH)
        self.validate_passwords()
        self.validate_password_for_user(self.instance if isinstance(self.instance, User) else None)
        return cleaned_data


def _refuse_taken_email(*, email: str, user_pk, org_id) -> str:
    # A domain another organization has claimed is refused before anything is looked up, so
    # this form cannot probe which of its addresses have accounts. Elsewhere, emails are
    # unique across every organization (most of which row-level security hides); saying so is
    # what the unique index would say anyway.
    owner = selectors.email_domain_owner(email=email)
    if owner is not None and owner != org_id:
        raise ValidationError(services.EMAIL_DOMAIN_CLAIMED)
    existing = selectors.auth_user_by_email(email=email)
    if existing is not None and existing.pk != user_pk:
        raise ValidationError(EMAIL_TAKEN)
    return email


class UserChangeForm(PasswordFormMixin, forms.ModelForm):
    password1, password2 = _optional_password_fields()

    class Meta:
        model = User
        fields = ("email", "full_name", "is_active", "is_staff")

    def clean_email(self):
        return _refuse_taken_email(
            email=self.cleaned_data["email"].strip(),
            user_pk=self.instance.pk,
            org_id=self.instance.org_id,
        )


class EndpointForm(forms.ModelForm):
    """Checks the config; EndpointAdmin.fields names the other inputs."""

    class Meta:
        model = Endpoint
        fields = ("config",)

    def clean_config(self):
        config = self.cleaned_data["config"]
        try:
            # The API's rules for the settings, so that both doors accept the same configs.
            config = EndpointConfigInput().run_validation({} if config is None else config)
        except serializers.ValidationError as exc:
            raise ValidationError(_error_messages(exc.detail)) from exc
        # The service fills in the same defaults; the database insists on max_concurrency.
        return {**services.ENDPOINT_DEFAULTS, **config}


def _error_messages(detail) -> list[str]:
    """A serializer's errors (a list, or ``{field: [message]}``) as form messages."""
    if isinstance(detail, dict):
        return [f"{field}: {message}" for field, messages in detail.items() for message in messages]
    return [str(message) for message in detail]


class OrgSwitchForm(forms.Form):
    org_id = forms.UUIDField(label="Organization id")

    def clean_org_id(self):
        org_id = self.cleaned_data["org_id"]
        if not selectors.auth_org_is_active(org_id=org_id):
            raise ValidationError(ORG_NOT_FOUND)
        return org_id


# -- organizations, users, memberships -----------------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    """The organization in context (one row). sys_admin creates organizations and switches
    between them; org admins may rename theirs."""

    resource = "organization"
    list_display = ("name", "org_type", "email_domain", "is_active", "created_at")
    list_select_related = ("org_type",)
    readonly_fields = ("id", "created_at", "updated_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "org_type", "email_domain")
        return ("id", "name", "email_domain", "org_type", "is_active", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        if is_platform_staff(request):
            return self.readonly_fields
        # The email domain is verified ownership: platform staff alone set it.
        return (*self.readonly_fields, "org_type", "is_active", "email_domain")

    def save_model(self, request, obj, form, change):
        if change:
            services.organization_update(
                org=fresh(obj),
                actor=request.user,
                ip_address=client_ip(request),
                **changes(form),
            )
            return
        org = services.organization_create(
            name=form.cleaned_data["name"],
            org_type=form.cleaned_data["org_type"].pk,
            email_domain=form.cleaned_data["email_domain"],
        )
        adopt(obj, org)

    def response_add(self, request, obj, post_url_continue=None):
        # The new organization is not the one in context, so its change page would not find
        # it: offer to switch into it instead.
        self.message_user(request, f"Created {obj.name} ({obj.pk}).", messages.SUCCESS)
        return HttpResponseRedirect(
            f"{reverse('admin:switch_org')}?{urlencode({'org_id': str(obj.pk)})}"
        )

    def get_urls(self):
        switch = path("switch/", self.admin_site.admin_view(self.switch_view), name="switch_org")
        return [switch, *super().get_urls()]

    def switch_view(self, request):
        """sys_admin: act in another organization, by id (RLS hides the list of them)."""
        if not is_platform_staff(request):
            raise PermissionDenied
        form = OrgSwitchForm(request.POST or None, initial={"org_id": request.GET.get("org_id")})
        if request.method == "POST" and form.is_valid():
            self._switch(request, form.cleaned_data["org_id"])
            return HttpResponseRedirect(reverse("admin:index"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Switch organization",
            "form": form,
            "acting_elsewhere": current_org_id() != request.user.org_id,
        }
        return TemplateResponse(request, "admin/switch_org.html", context)

    def _switch(self, request, org_id) -> None:
        if org_id == request.user.org_id:
            request.session.pop(AdminOrgContextMiddleware.SESSION_KEY, None)
            self.message_user(request, "You are back in your home organization.")
            return
        request.session[AdminOrgContextMiddleware.SESSION_KEY] = str(org_id)
        services.platform_act_record(
            org_id=org_id, actor=request.user, ip_address=client_ip(request), via="admin_switch"
        )
        with org_context(org_id):
            name = Organization.objects.get(pk=org_id).name
        self.message_user(request, f"You are now acting in {name}; every request is audited.")


@admin.register(User)
class UserAdmin(RoleChoicesMixin, TenantAdmin):
    """Users homed here or members here. Only those homed here are edited here, and only
    sys_admin edits platform staff or grants admin access; roles change on memberships."""

    resource = "user"
    list_display = (
        "email",
        "full_name",
        "role",
        "member_role",
        "is_active",
        "is_staff",
        "last_login",
    )
    list_filter = ("role", "is_active", "is_staff")
    # Never a bare select_related(): it would join the home organization, which row-level
    # security hides for members homed elsewhere, and the inner join would drop them.
    list_select_related = ("role",)
    search_fields = ("email", "full_name")
    exclude = ("password",)

    def get_queryset(self, request):
        # Users.objects through the selector: scoped to who is visible here, plus their role
        # in this organization (a member's home role may be another organization's).
        return selectors.user_list(org_id=require_org_id())

    @admin.display(description="role here")
    def member_role(self, obj):
        return obj.member_role

    form = UserChangeForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("email", "full_name", "role", "is_active", "is_staff")}),
            ("Activity", {"fields": ("last_login", "created_at")}),
        ]
        if self.has_change_permission(request, obj):
            description = "Leave both empty to keep the current password."
            password = {"fields": ("password1", "password2"), "description": description}
            fieldsets.insert(1, ("New password", password))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        staff = () if is_platform_staff(request) else ("is_staff",)
        return ("role", *staff, "last_login", "created_at")

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return True
        homed_here = obj.org_id == current_org_id()
        return homed_here and (is_platform_staff(request) or obj.role_id != UserRole.SYS_ADMIN)

    def has_add_permission(self, request):
        return False  # accounts are created when an invitee redeems their invitation

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: audit rows and keys refer to the user

    def save_model(self, request, obj, form, change):
        # The form has already set the new values on obj; the service saves and audits.
        services.user_update(
            user=obj,
            actor=request.user,
            password=form.cleaned_data.get("password1") or None,
            ip_address=client_ip(request),
            **{
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in services.USER_EDITABLE_FIELDS
            },
        )


@admin.register(Membership)
class MembershipAdmin(RoleChoicesMixin, TenantAdmin):
    """Members of this organization. Role changes and deactivation are audited; members
    come in by accepting an invitation (InvitationAdmin), never by being added here."""

    resource = "membership"
    list_display = ("user", "role", "is_active", "is_primary", "created_at")
    list_filter = ("role", "is_active", "is_primary")
    list_select_related = ("user", "role")
    search_fields = ("user__email", "user__full_name")

    fields = ("user", "role", "is_active", "is_primary", "created_at", "updated_at")
    readonly_fields = ("user", "is_primary", "created_at", "updated_at")

    def has_change_permission(self, request, obj=None):
        if obj is not None and not role_grantable(
            granter_role=admin_role(request), role=obj.role_id
        ):
            return False  # a member above one's own role (platform staff above all)
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        return False  # members come through invitations

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead, which is audited

    def save_model(self, request, obj, form, change):
        services.membership_update(
            membership=fresh(obj),
            actor=request.user,
            actor_role=admin_role(request),
            role=form.cleaned_data["role"].pk,
            is_active=form.cleaned_data["is_active"],
            ip_address=client_ip(request),
        )


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ("email", "role")


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    """This organization's invitations: sent (email and role only), revoked, sent again. The
    token is only ever in the invitee's mail. "My invitations" (``mine/``) is where the
    logged-in staff user answers the invitations sent to them by any organization."""

    resource = "invitation"
    form = InvitationForm
    list_display = ("email", "role", "status", "invited_by", "created_at", "expires_at")
    list_filter = ("status", "role")
    list_select_related = ("role", "invited_by")
    search_fields = ("email",)
    readonly_fields = (
        "email",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "responded_at",
        "accepted_by",
    )
    exclude = ("token_hash",)
    actions = ("revoke", "resend")

    def get_fields(self, request, obj=None):
        return ("email", "role") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "role":
            # Roles not above the inviter's own; the service refuses the rest all the same.
            kwargs["queryset"] = UserRoleLu.objects.filter(
                is_active=True, pk__in=services.invitable_roles(own_role=admin_role(request))
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        invitation = services.invitation_create(
            org_id=require_org_id(),
            actor=request.user,
            actor_role=admin_role(request),
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"].pk,
            ip_address=client_ip(request),
        )
        adopt(obj, invitation)

    def _each_pending(self, request, queryset, service) -> str:
        """``service`` on each selected invitation still open: how many, counted. One answered
        since the page was drawn is refused on its own, as a message."""
        done = rows_act(
            self,
            request,
            queryset.filter(status=InvitationStatus.PENDING),
            lambda invitation: service(
                invitation=invitation, actor=request.user, ip_address=client_ip(request)
            ),
            refusal_by_pk("Invitation"),
        )
        return counted(done, "invitation")

    @admin.action(description="Revoke the selected invitations", permissions=("run",))
    def revoke(self, request, queryset):
        revoked = self._each_pending(request, queryset, services.invitation_revoke)
        self.message_user(request, f"Revoked {revoked}.")

    @admin.action(description="Send the selected invitations again", permissions=("run",))
    def resend(self, request, queryset):
        sent = self._each_pending(request, queryset, services.invitation_resend)
        self.message_user(request, f"Sent {sent} again, with new links.")

    def get_urls(self):
        mine = path("mine/", self.admin_site.admin_view(self.mine_view), name="my_invitations")
        return [mine, *super().get_urls()]

    def mine_view(self, request):
        """The logged-in user's own open invitations, from any organization, to accept or
        decline (POST, CSRF-checked)."""
        if request.method == "POST":
            self._answer(request)
            return HttpResponseRedirect(reverse("admin:my_invitations"))
        context = {
            **self.admin_site.each_context(request),
            "title": "My invitations",
            "invitations": selectors.invitations_open_for_user(user=request.user),
        }
        return TemplateResponse(request, "admin/my_invitations.html", context)

    def _answer(self, request) -> None:
        try:
            invitation_id = int(request.POST.get("invitation_id", ""))
        except ValueError:
            invitation_id = 0
        invitation = selectors.invitation_of_user(user=request.user, invitation_id=invitation_id)
        if invitation is None:
            self.message_user(request, services.INVITATION_NOT_FOUND, messages.ERROR)
            return
        try:
            if request.POST.get("answer") == "accept":
                services.invitation_accept(
                    invitation=invitation, user=request.user, ip_address=client_ip(request)
                )
                self.message_user(request, f"You are now a member of {invitation.org_name}.")
            else:
                services.invitation_decline(
                    invitation=invitation, user=request.user, ip_address=client_ip(request)
                )
                self.message_user(request, f"Declined the invitation of {invitation.org_name}.")
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)


# -- portals, keys, audit ------------------------------------------------------------------


@admin.register(ChannelType)
class ChannelTypeAdmin(PlatformCatalogueAdmin):
    resource = "channel_type"
    list_display = ("code", "name", "endpoint_kind", "access_medium", "auth_type", "base_url")
    list_filter = ("endpoint_kind", "access_medium", "auth_type")
    list_select_related = ("auth_type",)
    search_fields = ("code", "name")

    def save_model(self, request, obj, form, change):
        if change:
            services.channel_type_update(channel_type=fresh(obj), **changes(form))
        else:
            adopt(obj, services.channel_type_create(**form.cleaned_data))


@admin.register(Endpoint)
class EndpointAdmin(RowByRowDelete, TenantAdmin):
    """This organization's portals. Every change is audited."""

    resource = "endpoint"
    form = EndpointForm
    fields = ("name", "channel_type", "base_url", "config", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")
    list_display = ("name", "channel_type", "effective_base_url", "created_at")
    list_select_related = ("channel_type",)
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        if change:
            services.endpoint_update(endpoint=fresh(obj), actor=request.user, **changes(form))
            return
        endpoint = services.endpoint_create(
            org_id=require_org_id(), actor=request.user, **form.cleaned_data
        )
        adopt(obj, endpoint)

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj, actor=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    """Keys are issued through the API (shown once there); here they are listed and revoked.
    The key's hash is never shown."""

    resource = "api_key"
    fields = ("name", "prefix", "user", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    exclude = ("key_hash",)
    list_display = fields
    list_select_related = ("user", "created_by")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__email")
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False  # issued through the API, which shows the key once

    @admin.action(description="Revoke the selected API keys", permissions=("run",))
    def revoke(self, request, queryset):
        live = list(queryset.filter(revoked_at__isnull=True))
        for api_key in live:
            services.api_key_revoke(
                api_key=api_key, actor=request.user, ip_address=client_ip(request)
            )
        self.message_user(request, f"Revoked {counted(len(live), 'API key')}.")


@admin.register(AuditEvent)
class AuditEventAdmin(TenantAdmin):
    """The audit trail is append-only: the table lets org admins view it, nothing more."""

    resource = "audit_event"
    list_display = ("created_at", "action", "actor_email", "object_type", "object_id", "ip_address")
    list_filter = ("action", "object_type")
    search_fields = ("actor_email", "object_id", "request_id")


admin.site.register((OrgTypeLu, UserRoleLu, ChannelAuthTypeLu), LookupAdmin)
