"""The admin's site and the bases every app's admin pages derive from.

Who may open the admin at all is one rule (``PlatformAdminSite.has_permission``): an active
user with ``is_staff`` whose role here the org-context middleware could establish, that is, a
live membership of their home organization (platform staff: the organization they switched
into). What they may do on each page is the API's answer: every base below asks the
permission table (rcm/permissions.py) with the page's ``resource`` and the role the middleware
put on the request, so a page can offer less than the table allows, never more.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from rcm import permissions
from rcm.context import require_org_id
from rcm.errors import ApplicationError
from rcm.lookups import UserRole


def admin_role(request) -> str | None:
    """The role the user acts with in the organization in context (set by the tenants
    middleware; None when there is no live membership and so no admin at all)."""
    return getattr(request, "admin_role", None)


def admin_allowed(request, resource: str, action: str) -> bool:
    return permissions.allowed(admin_role(request), resource, action)


def is_platform_staff(request) -> bool:
    return admin_role(request) == UserRole.SYS_ADMIN


PLATFORM_SECTION = "Platform"


class PlatformAdminSite(admin.AdminSite):
    site_header = "RCM platform"
    site_title = "RCM admin"
    index_title = "Administration"
    site_url = None  # there is no public site to link to

    def has_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff and admin_role(request) is not None

    def get_app_list(self, request, app_label=None):
        """The index as people work: each app's own pages, and the rows every organization
        shares (lookup tables, the task and channel catalogues) in one "Platform" section,
        platform staff's; their pages stay where the permission table lets others read them."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps  # an app's own page lists all of its models
        platform = []
        for app in apps:
            shared = [e for e in app["models"] if self._shared(e["model"])]
            platform += shared
            app["models"] = [e for e in app["models"] if e not in shared]
        apps = [app for app in apps if app["models"]]
        if platform and is_platform_staff(request):
            apps.append(
                {
                    "name": PLATFORM_SECTION,
                    "app_label": "platform",
                    "app_url": reverse("admin:index"),
                    "has_module_perms": True,
                    "models": sorted(platform, key=lambda entry: entry["name"]),
                }
            )
        return apps

    def _shared(self, model) -> bool:
        return isinstance(self._registry.get(model), PlatformCatalogueAdmin)


# -- bases ---------------------------------------------------------------------------------


class ServiceAdmin(admin.ModelAdmin):
    """A page over one resource of the permission table. A service's refusal (a conflict, a
    forbidden self-change) is a message, not a 500.

    Actions declared with ``permissions=("run",)`` ask the table's ``run``.
    """

    resource: str = ""

    # Portal URLs typed without a scheme are https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return admin_allowed(request, self.resource, permissions.VIEW)

    def has_add_permission(self, request):
        return admin_allowed(request, self.resource, permissions.ADD)

    def has_change_permission(self, request, obj=None):
        return admin_allowed(request, self.resource, permissions.CHANGE)

    def has_delete_permission(self, request, obj=None):
        return admin_allowed(request, self.resource, permissions.DELETE)

    def has_run_permission(self, request):
        return admin_allowed(request, self.resource, permissions.RUN)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django's admin sends a missing row to the index with "doesn't exist"; here another
        # organization's row and a row that never was are the same answer as everywhere else
        # (the API, the console): not found.
        raise Http404(f"No {opts.verbose_name} with id {object_id!r} here.")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as error:
            # The admin's transaction has rolled back by now; say why and let them try again.
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class PlatformCatalogueAdmin(ServiceAdmin):
    """Rows shared by every organization (the table: members read, platform staff add and
    change). Nothing is deleted here: rows of other organizations, invisible in this one, may
    point at a catalogue row. Deactivate it instead."""

    def has_delete_permission(self, request, obj=None):
        return False


class LookupAdmin(PlatformCatalogueAdmin):
    """A lookup table (rcm.lookups.LookupModel). Its key is fixed once other rows use it."""

    resource = "lookup"
    list_filter = ("is_active",)

    def get_list_display(self, request):
        return (self.model._meta.pk.name, "description", "sort_order", "is_active")

    def get_search_fields(self, request):
        return (self.model._meta.pk.name, "description")

    def get_readonly_fields(self, request, obj=None):
        # Changing a primary key in the admin would insert a second row, not rename the first.
        return (self.model._meta.pk.name,) if obj is not None else ()


class TenantAdmin(ServiceAdmin):
    """Rows of the organization in context; the organization is never a form field."""

    def get_queryset(self, request):
        queryset = self.model.objects.all()  # the fail-closed manager scopes to the context
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_exclude(self, request, obj=None):
        return (*(self.exclude or ()), "org")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.org_id = require_org_id()
        super().save_model(request, obj, form, change)


class RowByRowDelete(admin.ModelAdmin):
    """For a page whose ``delete_model`` deletes through a service: the list's bulk delete
    goes through it too, row by row, where Django's would delete in one SQL statement."""

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyTenantAdmin(TenantAdmin):
    """Rows the engine and the services write: shown here, never added, changed or deleted
    (whatever the API lets a role do with them, it does through its own routes)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """A parent's rows as a table; they change through the API or the engine, never here. The
    parent page has asked the table already: an inline is shown wherever its parent is."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def rows_act(model_admin, request, rows, act, refused, level=messages.WARNING) -> int:
    """``act(row)`` on each row on its own, so that one refusal does not undo the others: how
    many it went through for. A row whose service refuses is a message at ``level``, the text
    ``refused(row, error)``."""
    done = 0
    for row in rows:
        try:
            act(row)
        except ApplicationError as error:
            model_admin.message_user(request, refused(row, error), level)
        else:
            done += 1
    return done


def refusal_by_pk(label: str):
    """A refusal naming the row by its id (the row changed in the meantime: a job or run
    finished, an invitation was answered)."""
    return lambda row, error: f"{label} {row.pk}: {error.message}"


def counted(number: int, singular: str, plural: str = "") -> str:
    """A count as a sentence says it: "1 run", "3 runs", "2 batch jobs" (never "run(s)")."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def pretty_json(value):
    """A JSON value as an indented, read-only block on an admin page."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


# -- helpers for pages whose writes go through services ------------------------------------


def adopt(obj, saved) -> None:
    """Turn the admin's unsaved form instance into the row a service saved (for the log
    entry and the redirect that follow ``save_model``)."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False


def changes(form) -> dict:
    return {name: form.cleaned_data[name] for name in form.changed_data}


def fresh(obj):
    """The row as stored: the form has already written its input onto ``obj``, and services
    compare the input with the stored values."""
    return type(obj).objects.get(pk=obj.pk)
