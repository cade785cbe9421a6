"""A plan written through the services, as an operator's actions would write it: portals and
endpoints (tenants), credentials (webactions), workflows built and published (authoring, so
publishing checks them), pages remembered (memory) and finished jobs (the history service).

Nothing here inserts rows itself. What exists is reused: channel types by code, endpoints by
channel type; an organization whose workflows exist already is left alone.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from collections import Counter
from collections.abc import Callable

from django.db import models
from faker import Faker

from dbadmin.seeding import rows, vocabulary
from dbadmin.seeding.profiles import OrgPlan, stream
from dbadmin.seeding.shapes import SHAPES, Shape, WebStep
from dbadmin.seeding.vocabulary import Portal
from memory import services as memory_services
from memory.models import MicroState
from rcm import clock
from rcm.context import org_context
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.models import ChannelType, Endpoint, Membership, Organization, User
from webactions.actions import describe
from webactions.agent import step_key
from webactions.models import CredentialType, PortalCredential
from webactions.services import credentials as credential_services
from workflows.models import (
    BatchJob,
    BatchJobItem,
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowTrace,
    WorkflowTransition,
)
from workflows.selectors.requirements import task_type_find
from workflows.services import authoring, history

CREDENTIAL_NAME = "Automation login"
# An organization's patients: rows draw from them, so a patient is checked now and then.
PATIENTS = 600
NAME_POOLS = (300, 500)  # first and last names they are made of
# What a state's action has done since it was stored: a few outcomes, nearly all successes.
STATE_OUTCOMES = (3, 10)
STATE_SUCCESS = 0.95
# The tables the seed writes, as the command reports them (V8 names, from the models).
COUNTED: tuple[type[models.Model], ...] = (
    Organization,
    User,
    Membership,
    Endpoint,
    PortalCredential,
    Workflow,
    WorkflowNode,
    WorkflowTransition,
    WorkflowRevision,
    BatchJob,
    BatchJobItem,
    WorkflowTrace,
    MicroState,
)


def task_types_missing() -> list[str]:
    """The shapes' task types the catalogue lacks (its data migration makes all of them)."""
    return [
        shape.task_type for shape in SHAPES.values() if task_type_find(ref=shape.task_type) is None
    ]


def channel_types_ensure(codes) -> dict[str, ChannelType]:
    """The portals' channel types: those the data migrations made are reused by code."""
    found = {channel.code: channel for channel in ChannelType.objects.filter(code__in=codes)}
    for code in codes:
        if code not in found:
            portal = vocabulary.PORTALS[code]
            found[code] = tenant_services.channel_type_create(
                code=code,
                name=portal.name,
                base_url=portal.base_url,
                endpoint_kind="payer",
                access_medium="web",
            )
    return found


def table_counts(org_id: uuid.UUID) -> Counter:
    """Rows of each seeded table the organization sees (its own, and its members)."""
    with org_context(org_id):
        return Counter({model._meta.db_table: model.objects.count() for model in COUNTED})


def organization_create(plan: OrgPlan) -> uuid.UUID:
    """A test-data organization and its people (no passwords: nobody logs in to them)."""
    org = tenant_services.organization_create(
        name=plan.name, org_type=plan.org_type, email_domain=plan.email_domain
    )
    for user in plan.users:
        tenant_services.user_create(
            org_id=org.id, email=user.email, role=user.role, full_name=user.full_name
        )
    return org.id


def content_present(plan: OrgPlan, org_id: uuid.UUID) -> bool:
    with org_context(org_id):
        return Workflow.objects.filter(name__in=plan.workflow_names()).exists()


def content_write(
    plan: OrgPlan,
    org_id: uuid.UUID,
    channel_types: dict[str, ChannelType],
    *,
    on_rows: Callable[[int], None] = lambda count: None,
) -> None:
    """The organization's endpoints, credentials, workflows, remembered pages and finished
    jobs; ``on_rows`` hears of each job's rows as they are written."""
    rng = stream(f"{plan.seed}:content")
    operator = tenant_selectors.auth_user_by_email(email=plan.operator_email)
    with org_context(org_id):
        endpoints = {
            code: _endpoint(org_id, channel_types[code], rng, operator) for code in plan.portals
        }
        published = {}
        for shape_key, code in plan.workflows:
            shape, portal, endpoint = SHAPES[shape_key], vocabulary.PORTALS[code], endpoints[code]
            credential = _credential(plan, endpoint, operator)
            workflow, revision = _workflow(shape, portal, endpoint, credential, operator)
            states = _memory(rng, shape, portal, workflow, endpoint)
            published[shape_key] = (workflow, revision, portal, endpoint, states)
        people = _people(plan)
        now = clock.now()
        for job in plan.jobs:
            workflow, revision, portal, endpoint, states = published[job.shape]
            concurrency = endpoint.config["max_concurrency"]
            made = rows.job_history(
                shape=SHAPES[job.shape],
                portal=portal,
                rng=rng,
                rows=job.rows,
                people=people,
                states=states,
                concurrency=concurrency,
                ends_at=now - job.ends_ago,
                endpoint_id=endpoint.pk,
            )
            history.batch_job_record_history(
                workflow=workflow,
                revision=revision,
                items=made.items,
                created_at=made.created_at,
                started_at=made.started_at,
                created_by=operator,
                file_name=_file_name(job.shape, made.created_at),
                max_concurrency=concurrency,
            )
            on_rows(job.rows)


def _endpoint(org_id, channel_type: ChannelType, rng, operator) -> Endpoint:
    # Drawn whether or not the endpoint exists, so that what follows draws the same numbers.
    concurrency = rng.choice((4, 6, 8))
    found = Endpoint.objects.filter(channel_type=channel_type).first()
    if found is not None:
        return found
    return tenant_services.endpoint_create(
        org_id=org_id,
        name=vocabulary.PORTALS[channel_type.code].endpoint_name,
        channel_type=channel_type,
        config={"max_concurrency": concurrency},
        actor=operator,
    )


def _credential(plan: OrgPlan, endpoint: Endpoint, operator) -> PortalCredential:
    """The endpoint's automation login. Its secrets are random and open nothing: the portals
    are real, the accounts are not."""
    found = PortalCredential.objects.filter(endpoint=endpoint, name=CREDENTIAL_NAME).first()
    if found is not None:
        return found
    account = re.sub(r"[^a-z0-9]+", ".", plan.email_domain.removesuffix(".test"))
    return credential_services.credential_create(
        org_id=endpoint.org_id,
        actor=operator,
        endpoint_id=endpoint.pk,
        name=CREDENTIAL_NAME,
        credential_type=CredentialType.USER_PASS,
        secrets={"username": f"{account}.rpa", "password": secrets.token_urlsafe(18)},
    )


def _workflow(shape: Shape, portal: Portal, endpoint, credential, operator):
    workflow = authoring.workflow_create(
        org_id=endpoint.org_id,
        created_by=operator,
        name=shape.name(portal),
        description=shape.description,
        required_data=list(shape.required_data),
        task_type=shape.task_type,
        endpoint_id=endpoint.pk,
    )
    authoring.workflow_graph_replace(
        workflow=workflow,
        version=workflow.version,
        nodes=shape.nodes(endpoint_id=endpoint.pk, credential_id=credential.pk),
        transitions=shape.edges(),
    )
    revision = authoring.workflow_publish(
        workflow=workflow, created_by=operator, comment="Seeded (rcm_seed)"
    )
    return workflow, revision


def _memory(rng, shape: Shape, portal: Portal, workflow, endpoint) -> dict[str, int]:
    """One remembered page per web node, at the step the traces name, with a few outcomes;
    node key -> the state."""
    nodes = {node.key: node for node in WorkflowNode.objects.filter(workflow=workflow)}
    states = {}
    for step in shape.web_steps():
        stored = memory_services.micro_state_store(
            dom_snapshot=step.page(portal),
            action_json=_remembered(step),
            url=f"{portal.base_url}/{step.path}",
            workflow=workflow,
            node=nodes[step.node],
            endpoint=endpoint,
            step_key=step_key("actions", step.traced, step.action),
            label=f"{step.title}: {describe(step.target)}",
            category="web",
        )
        state = stored.state
        for _ in range(rng.randint(*STATE_OUTCOMES)):
            state = memory_services.micro_state_outcome_record(
                state=state, success=rng.random() < STATE_SUCCESS
            )
        states[step.node] = state.pk
    return states


def _remembered(step: WebStep) -> dict:
    """The action as the agent remembers it: the tool, the target and the element found."""
    return {"tool": step.action["tool"], "target": step.target, "element": step.element}


def _people(plan: OrgPlan) -> list[tuple[str, str]]:
    fake = Faker("en_US")
    fake.seed_instance(f"{plan.seed}:patients")
    firsts = [fake.first_name() for _ in range(NAME_POOLS[0])]
    lasts = [fake.last_name() for _ in range(NAME_POOLS[1])]
    rng = stream(f"{plan.seed}:patients")
    return [(rng.choice(firsts), rng.choice(lasts)) for _ in range(PATIENTS)]


def _file_name(shape: str, uploaded: dt.datetime) -> str:
    return f"{shape.replace('_', '-')}-{uploaded:%Y-%m-%d-%H%M}.csv"
