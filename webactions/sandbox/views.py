"""The sandbox payer portal: what the web agent drives in tests and demos, since no real portal
is reachable from them. Served at /sandbox/ when RCM_SANDBOX is on (never in production).

Every page lives under a *layout token*, the first path segment after /sandbox/:

* ``v1`` or ``v2``: the layout. v2 is v1 after a redesign: other ids and classes, definition
  lists where v1 has a table, "Subscriber ID" for "Member ID", the group number moved from
  the coverage section to the plan section. The same data in both.
* ``-slow<ms>``: every page answers that many milliseconds late (at most 10,000);
* ``-fail<percent>``: that share of requests answers 503 (``-fail100``: the portal is down).

So an endpoint's base URL carries its behaviour (``/sandbox/v1-slow200-fail10/``), and so does
every link and form of the pages it serves.

It keeps no rows: its data comes from a seed (``data.py``), and its session is a signed,
expiring cookie of its own. Log-ins: ``ACCOUNTS`` below.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from dataclasses import dataclass

import pyotp
from django.conf import settings
from django.core import signing
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from webactions.sandbox import data


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    totp_seed: str  # empty: this login asks for no code


# The sandbox's logins: public, like the rest of the sandbox (it holds made-up patients only).
ACCOUNTS = {
    account.username: account
    for account in (
        Account("clerk", "sandbox-clerk-2026", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
        Account("frontdesk", "sandbox-frontdesk-2026", ""),
    )
}
SESSION_COOKIE = "sandbox_session"
LOGIN_FAILED = "Invalid username, password or code."
NOT_FOUND = "Member not found. Check the ID, date of birth and last name and try again."
MAX_SLOW_MS = 10_000
_TOKEN = re.compile(r"^(?P<layout>v1|v2|v3)(?P<options>(?:-slow\d+|-fail\d+)*)$")
_SIGNER_SALT = "webactions.sandbox.session"


@dataclass(frozen=True)
class Layout:
    token: str  # as in the URL, options included
    version: str  # v1 | v2 | v3 (v1 with a trap for a wrong click)
    slow_ms: int
    fail_percent: int


def _layout(token: str) -> Layout:
    match = _TOKEN.match(token)
    if match is None:
        raise Http404("No such sandbox layout.")
    slow = re.search(r"-slow(\d+)", match["options"])
    fail = re.search(r"-fail(\d+)", match["options"])
    return Layout(
        token=token,
        version=match["layout"],
        slow_ms=min(int(slow[1]), MAX_SLOW_MS) if slow else 0,
        fail_percent=min(int(fail[1]), 100) if fail else 0,
    )


def _portal_page(*, login_required: bool = True):
    """A page of the portal: its layout's latency and failures first, then (for every page
    but the log-in) a live session, else the log-in page, as portals do when one expires."""

    def decorate(view):
        def wrapped(request, layout: str, **kwargs):
            if not settings.RCM_SANDBOX:
                # Unmounted then (rcm/urls.py); checked here too, should a URLconf keep it.
                raise Http404("The sandbox portal is off.")
            portal = _layout(layout)
            if portal.slow_ms:
                time.sleep(portal.slow_ms / 1000)
            # Not a secret draw: an injected fault for tests and demos.
            if portal.fail_percent and random.randrange(100) < portal.fail_percent:  # noqa: S311
                return HttpResponse(
                    "<h1>503 Service Unavailable</h1><p>The portal is temporarily unavailable.</p>",
                    status=503,
                )
            user = _session_user(request, portal)
            if login_required and user is None:
                login = reverse("sandbox-login", args=[portal.token])
                return HttpResponseRedirect(f"{login}?next={request.path}")
            request.sandbox_user = user
            return view(request, portal, **kwargs)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


def _session_user(request, portal: Layout) -> str | None:
    cookie = request.COOKIES.get(f"{SESSION_COOKIE}_{portal.version}")
    if not cookie:
        return None
    max_age = settings.RCM_SANDBOX_SESSION_MINUTES * 60
    try:
        return signing.TimestampSigner(salt=_SIGNER_SALT).unsign(cookie, max_age=max_age)
    except signing.BadSignature:  # tampered, or expired (SignatureExpired is one)
        return None


def _page(request, portal: Layout, name: str, context: dict | None = None, status: int = 200):
    context = {"portal": portal, "user": getattr(request, "sandbox_user", None), **(context or {})}
    return render(request, f"sandbox/{portal.version}/{name}.html", context, status=status)


# The X12 270 service type codes the search offers (a select): the benefits page names the
# one asked about.
SERVICE_TYPES = {
    "30": "Health benefit plan coverage",
    "98": "Professional (physician) visit - office",
    "86": "Emergency services",
    "UC": "Urgent care",
    "MH": "Mental health",
}
DEFAULT_SERVICE_TYPE = "30"


# -- pages --------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@_portal_page(login_required=False)
def login(request, portal: Layout):
    if request.method == "GET":
        return _page(request, portal, "login", {"next": request.GET.get("next", "")})
    username = request.POST.get("username", "")
    account = ACCOUNTS.get(username)
    code = request.POST.get("code", "").strip()
    accepted = (
        account is not None
        and request.POST.get("password", "") == account.password
        and (not account.totp_seed or pyotp.TOTP(account.totp_seed).verify(code, valid_window=1))
    )
    if not accepted:
        context = {"error": LOGIN_FAILED, "next": request.POST.get("next", "")}
        return _page(request, portal, "login", context, status=401)
    target = request.POST.get("next", "")
    home = reverse("sandbox-search", args=[portal.token])
    # Only a page of this same layout: never an open redirect.
    if not target.startswith(f"/sandbox/{portal.token}/"):
        target = home
    response = HttpResponseRedirect(target)
    response.set_cookie(
        f"{SESSION_COOKIE}_{portal.version}",
        signing.TimestampSigner(salt=_SIGNER_SALT).sign(username),
        httponly=True,
        samesite="Lax",
        path="/sandbox/",
    )
    return response


@require_http_methods(["POST"])
@_portal_page()
def logout(request, portal: Layout):
    response = HttpResponseRedirect(reverse("sandbox-login", args=[portal.token]))
    response.delete_cookie(f"{SESSION_COOKIE}_{portal.version}", path="/sandbox/")
    return response


@require_http_methods(["GET"])
@_portal_page()
def search(request, portal: Layout):
    """Patient search: member ID, date of birth and last name, all three required; the
    service type asked about (an X12 270 service type code) and whether to show out-of-network
    benefits ride along to the benefits page."""
    query = {name: request.GET.get(name, "").strip() for name in ("member_id", "dob", "last_name")}
    options = {
        "service_type": request.GET.get("service_type", DEFAULT_SERVICE_TYPE),
        "out_of_network": request.GET.get("out_of_network") == "on",
    }
    if options["service_type"] not in SERVICE_TYPES:
        options["service_type"] = DEFAULT_SERVICE_TYPE
    if not any(query.values()):
        return _page(request, portal, "search", _search_context(query, options))
    try:
        born = dt.date.fromisoformat(query["dob"])
    except ValueError:
        born = None
    patient = (
        data.patient_search(
            member_id=query["member_id"], date_of_birth=born, last_name=query["last_name"]
        )
        if born is not None and all(query.values())
        else None
    )
    if patient is None:
        context = {**_search_context(query, options), "error": NOT_FOUND}
        return _page(request, portal, "search", context, 404)
    # The options in the query string: a code and a flag, nothing about the patient.
    following = f"?service_type={options['service_type']}"
    following += "&out_of_network=on" if options["out_of_network"] else ""
    return HttpResponseRedirect(
        reverse("sandbox-eligibility", args=[portal.token, patient.member_id]) + following
    )


def _search_context(query: dict, options: dict) -> dict:
    return {"query": query, "options": options, "service_types": SERVICE_TYPES.items()}


def _patient(member_id: str) -> data.Patient:
    patient = data.sandbox_patient(member_id)
    if patient is None:
        raise Http404("No such member.")
    return patient


def _numbered(rows, number: str, missing: str):
    """The patient's claim or authorization with this number; ``missing`` as the 404."""
    found = next((row for row in rows if row.number == number), None)
    if found is None:
        raise Http404(missing)
    return found


@require_http_methods(["GET"])
@_portal_page()
def eligibility(request, portal: Layout, member_id: str):
    code = request.GET.get("service_type", DEFAULT_SERVICE_TYPE)
    context = {
        "patient": _patient(member_id),
        "service_type": f"{code} - {SERVICE_TYPES.get(code, SERVICE_TYPES[DEFAULT_SERVICE_TYPE])}",
        "out_of_network": request.GET.get("out_of_network") == "on",
    }
    return _page(request, portal, "eligibility", context)


@require_http_methods(["GET"])
@_portal_page()
def claim_status(request, portal: Layout, member_id: str, claim_number: str):
    patient = _patient(member_id)
    claim = _numbered(patient.claims, claim_number, "No such claim.")
    return _page(request, portal, "claim", {"patient": patient, "claim": claim})


@require_http_methods(["GET"])
@_portal_page()
def authorization(request, portal: Layout, member_id: str, auth_number: str):
    patient = _patient(member_id)
    found = _numbered(patient.authorizations, auth_number, "No such authorization.")
    return _page(request, portal, "authorization", {"patient": patient, "auth": found})


urlpatterns = [
    path("<str:layout>/login/", login, name="sandbox-login"),
    path("<str:layout>/logout/", logout, name="sandbox-logout"),
    path("<str:layout>/", search, name="sandbox-search"),
    path("<str:layout>/members/<str:member_id>/", eligibility, name="sandbox-eligibility"),
    path(
        "<str:layout>/members/<str:member_id>/claims/<str:claim_number>/",
        claim_status,
        name="sandbox-claim",
    ),
    path(
        "<str:layout>/members/<str:member_id>/authorizations/<str:auth_number>/",
        authorization,
        name="sandbox-authorization",
    ),
]
