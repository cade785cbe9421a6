"""The platform's catalogue from v3: portal types (channel types) and task types.

They belong to no organization, so their map entries carry none. Both are matched by their
natural key, which is what joins two deployments' "Availity" into one channel type and keeps
V8's own catalogue as it is:

- a portal type is its code (slugged; the v3 code may be NULL: then its name slugged, or the
  code the ``portal_type`` section of --map gives). A channel type with that code that the
  import did not create is the platform's own: it is used as it is, never changed.
- a task type is its (domain, action), unique in V8 but not in v3: two v3 task types with the
  same pair become one V8 task type, and one V8 already has is used as it is.

There are few of these rows; they are written through the ORM (channel types through the
tenants service), not in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from dbadmin.legacy.idmap import IdMap, digest
from dbadmin.legacy.secrets import RULES_VERSION, url_secrets_removed
from dbadmin.legacy.values import Unmapped
from tenants import services as tenant_services
from tenants.models import AccessMedium, ChannelType
from workflows.models import TaskType

CHANNEL_PATH, TASK_TYPE_PATH = "portal_type", "task_type"


def import_catalogue(main, platform: IdMap) -> None:
    _import_portal_types(main, platform)
    _import_task_types(main, platform)


def channel_code(main, row) -> str:
    mapped = main.values.channel_code(row.code) if row.code else None
    return mapped or slugify(row.code or row.name)[:64]


@dataclass(frozen=True)
class Kept:
    """One platform row kept in step with a v3 row: where it is reported and mapped."""

    path: str
    legacy_table: str
    target_table: str
    map_key: str  # the key its map entry has
    report_key: object  # the v3 key the report names
    row_hash: str


def _keep(main, platform: IdMap, kept: Kept, entry, current, *, create, update, joined: str):
    """The platform row made of a v3 row: created when there is none, updated when the v3 row
    changed since the import made it, or, when the platform made it, used as it is (``joined``
    says so in the report). None when the update is refused (reported by ``update``)."""
    if current is None:
        current, outcome = create(), "created"
    elif entry is None:
        main.report.skip(kept.path, kept.report_key, joined)
        return current
    elif entry.row_hash == kept.row_hash:
        main.report.tally(kept.path, "unchanged")
        return current
    else:
        current, outcome = update(current), "updated"
        if current is None:
            return None
    platform.record(
        kept.legacy_table, kept.target_table, [(kept.map_key, current.pk, kept.row_hash)]
    )
    main.report.tally(kept.path, outcome)
    return current


def _import_portal_types(main, platform: IdMap) -> None:
    report = main.report
    existing = {channel.code: channel for channel in ChannelType.objects.all()}
    seen: dict[str, int] = {}  # code -> the v3 portal type that took it in this run
    for row in main.source.all(
        "SELECT portal_type_id, code, name, base_url, endpoint_kind::text AS endpoint_kind, "
        "md5(p::text) AS row_md5 FROM portal_type p ORDER BY portal_type_id"
    ):
        report.read(CHANNEL_PATH)
        code = channel_code(main, row)
        if not code:
            report.reject(CHANNEL_PATH, row.portal_type_id, "no code, and no name to make one")
            continue
        try:
            kind = main.values("endpoint_kind", row.endpoint_kind)
        except Unmapped as exc:
            report.reject(CHANNEL_PATH, row.portal_type_id, str(exc))
            continue
        if code in seen:
            report.skip(
                CHANNEL_PATH,
                row.portal_type_id,
                f"joined to channel type {code!r} with v3 portal type {seen[code]}",
            )
            main.catalogue.channel_types[row.portal_type_id] = existing[code]
            continue
        seen[code] = row.portal_type_id
        removed: list[str] = []
        base_url = url_secrets_removed(row.base_url or "", "base_url", removed)
        for path in removed:  # a channel type's URL is read by every organization's members
            report.note(CHANNEL_PATH, row.portal_type_id, f"{path} is left out: a secret")
        fields = {"name": row.name[:200], "base_url": base_url[:500], "endpoint_kind": kind}
        # Mapped by code, not by the v3 serial: another deployment's serial 1 is another portal.
        kept = Kept(
            CHANNEL_PATH, "portal_type", "channel_type", code, row.portal_type_id,
            digest(row.row_md5, code, kind, RULES_VERSION),
        )  # fmt: skip
        existing[code] = _keep(
            main,
            platform,
            kept,
            platform.get("portal_type", "channel_type", code),
            existing.get(code),
            create=partial(
                tenant_services.channel_type_create,
                code=code,
                access_medium=AccessMedium.WEB,
                **fields,
            ),
            update=partial(_channel_type_update, fields),
            joined=f"the platform's channel type {code!r} is used as it is",
        )
        main.catalogue.channel_types[row.portal_type_id] = existing[code]


def _import_task_types(main, platform: IdMap) -> None:
    report = main.report
    by_key = {(t.domain_id, t.action_id): t for t in TaskType.objects.all()}
    for row in main.source.all(
        "SELECT task_type_id, domain::text AS domain, action::text AS action, display_name, "
        "description, created_at, md5(t::text) AS row_md5 FROM task_type t "
        "ORDER BY created_at, task_type_id"
    ):
        report.read(TASK_TYPE_PATH)
        legacy_id = str(row.task_type_id)
        try:
            key = (main.values("task_domain", row.domain), main.values("task_action", row.action))
        except Unmapped as exc:
            report.reject(TASK_TYPE_PATH, legacy_id, str(exc))
            continue
        fields = {
            "domain_id": key[0],
            "action_id": key[1],
            "display_name": row.display_name[:200],
            "description": row.description or "",
        }
        entry = platform.get("task_type", "task_type", legacy_id)
        current = TaskType.objects.filter(pk=entry.target_id).first() if entry else by_key.get(key)
        kept = Kept(
            TASK_TYPE_PATH, "task_type", "task_type", legacy_id, legacy_id,
            digest(row.row_md5, *key),
        )  # fmt: skip
        task_type = _keep(
            main,
            platform,
            kept,
            entry,
            current,
            create=partial(_task_type_create, row, fields),
            update=partial(_task_type_update, report, legacy_id, fields),
            joined=f"V8 has the task type {key[0]}/{key[1]} already: the v3 rows are joined to it",
        )
        if task_type is not None:
            by_key[key] = main.catalogue.task_types[legacy_id] = task_type


def _channel_type_update(fields: dict, channel: ChannelType) -> ChannelType:
    return tenant_services.channel_type_update(channel_type=channel, **fields)


def _task_type_create(row, fields: dict) -> TaskType:
    task_type = TaskType.objects.create(id=row.task_type_id, **fields)
    if row.created_at is not None:
        TaskType.objects.filter(pk=task_type.pk).update(created_at=row.created_at)
    return task_type


def _task_type_update(report, legacy_id: str, fields: dict, task_type: TaskType) -> TaskType | None:
    updated = TaskType.objects.filter(pk=task_type.pk)
    try:
        with transaction.atomic():
            updated.update(**fields)
    except IntegrityError:
        report.reject(
            TASK_TYPE_PATH,
            legacy_id,
            f"now {fields['domain_id']}/{fields['action_id']}, which another V8 task type is",
        )
        return None
    return updated.get()
