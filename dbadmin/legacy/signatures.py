"""v3 task signatures as the organization's V8 ones.

A v3 signature names one portal (an organization's endpoint) or one portal type (the
catalogue). V8 signatures are an organization's, on one of its endpoints, and an organization
has at most one endpoint per channel type; so a portal-type signature becomes, in each
organization with an endpoint of that type, a signature on that endpoint.

V8 keeps one signature per (organization, endpoint, domain, action) (``signature_key``). v3
signatures that land on one key — a portal's and its type's, or one V8 already has from its
own runs — are joined to that one, and the traces naming any of them find it. ``alias_of``
follows once every signature of the organization is in. Run counters start at zero: v3 kept
none.
"""

from __future__ import annotations

from functools import partial

from dbadmin.legacy.idmap import digest
from dbadmin.legacy.tables import aliases_link
from dbadmin.legacy.values import Unmapped
from workflows.models import TaskSignature

PATH = "task_signature"

QUERY = """
SELECT s.signature_id, s.portal_id, s.portal_type_id, s.domain::text AS domain,
       s.action::text AS action, s.source::text AS source, s.alias_of, s.created_at,
       s.updated_at, md5(s::text) AS row_md5
  FROM task_signature s
 WHERE s.portal_id IN (SELECT portal_id FROM integration_endpoint WHERE org_id = %(org)s)
    OR s.portal_type_id IN (SELECT portal_type_id FROM integration_endpoint WHERE org_id = %(org)s)
 ORDER BY s.created_at, s.signature_id
"""


def import_signatures(run) -> None:
    rows = run.source.all(QUERY, {"org": run.legacy_org.org_id})
    by_key = {
        (signature.endpoint_id, signature.domain_id, signature.action_id): signature.pk
        for signature in TaskSignature.objects.all()
    }
    by_type = {portal_type: endpoint for endpoint, portal_type in run.endpoints.values()}
    for row in rows:
        run.report.read(PATH)
        legacy_id = str(row.signature_id)
        if row.portal_id is not None:
            endpoint_id = run.endpoints.get(row.portal_id, (None,))[0]
        else:
            endpoint_id = by_type.get(row.portal_type_id)
        if endpoint_id is None:
            portal = row.portal_id or f"of type {row.portal_type_id}"
            run.report.reject(PATH, legacy_id, f"its portal {portal} was not imported")
            continue
        try:
            key = (
                endpoint_id,
                run.values("task_domain", row.domain),
                run.values("task_action", row.action),
            )
            source = run.values("task_signature_source", row.source)
        except Unmapped as exc:
            run.report.reject(PATH, legacy_id, str(exc))
            continue
        _signature(run, row, legacy_id, key, source, by_key)
    _aliases(run, rows)


def _signature(run, row, legacy_id: str, key: tuple, source: str, by_key: dict) -> None:
    row_hash = digest(row.row_md5, *key, source)
    entry = run.idmap.get("task_signature", "task_signature", legacy_id)
    if entry is not None and entry.row_hash == row_hash:
        run.report.tally(PATH, "unchanged")
        return
    existing = by_key.get(key)
    if existing is not None and (entry is None or int(entry.target_id) != existing):
        # Found again by its key in every run, like the catalogue's joined rows, so that every
        # run reports it alike; it has no map entry of its own.
        run.report.skip(
            PATH,
            legacy_id,
            f"joined to V8 signature {existing}, which has the same endpoint, domain and action",
        )
        run.signature_joins[legacy_id] = existing
        return
    fields = {
        "endpoint_id": key[0],
        "domain_id": key[1],
        "action_id": key[2],
        "source_id": source,
    }
    if entry is None:
        signature = TaskSignature.objects.create(org_id=run.org_id, **fields)
        signature_id, outcome = signature.pk, "created"
        by_key[key] = signature_id
    else:
        signature_id, outcome = int(entry.target_id), "updated"
        TaskSignature.objects.filter(pk=signature_id).update(**fields)
    stamps = {"created_at": row.created_at, "updated_at": row.updated_at or row.created_at}
    TaskSignature.objects.filter(pk=signature_id).update(
        **{name: value for name, value in stamps.items() if value is not None}
    )
    run.idmap.record("task_signature", "task_signature", [(legacy_id, signature_id, row_hash)])
    run.report.tally(PATH, outcome)


def signature_of(run, legacy_id: str) -> str | None:
    """The V8 signature a v3 one became, or was joined to."""
    joined = run.signature_joins.get(legacy_id)
    return str(joined) if joined else run.target("task_signature", "task_signature", legacy_id)


def _aliases(run, rows) -> None:
    aliases_link(
        run,
        path=PATH,
        model=TaskSignature,
        field="alias_of",
        links=[(row.signature_id, row.alias_of) for row in rows if row.alias_of is not None],
        resolve=partial(signature_of, run),
        what="v3 signature",
    )
