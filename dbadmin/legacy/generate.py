"""v3 databases to import: one created on a server, its schema, and generated data at scale.

``legacy_v3_generate(url, orgs=…, items=…)`` fills an empty database with a v3 deployment of
``items`` batch rows (each with its trace) spread over ``orgs`` organizations, with their users,
portals, task catalogue, requirements and page memory. Everything is made by the server
(``generate_series``) and deterministic: the same arguments give the same rows, so a
benchmark can import, import again and expect nothing changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

SCHEMA = Path(__file__).with_name("v3_schema.sql")
ROWS_PER_JOB = 500
STATES_PER_PORTAL = 40
USERS_PER_ORG = 5

PORTAL_TYPES = """
INSERT INTO portal_type (code, name, base_url, endpoint_kind) VALUES
    ('availity', 'Availity Essentials', 'https://apps.availity.com', 'payer'),
    ('uhc', 'UnitedHealthcare Provider Portal', 'https://www.uhcprovider.com', 'payer'),
    ('aetna', 'Aetna Provider Portal', 'https://www.aetna.com/health-care-professionals', 'payer'),
    ('medi-cal', 'Medi-Cal Provider Portal', 'https://www.medi-cal.ca.gov', 'payer'),
    ('cigna', 'Cigna for HCP', 'https://cignaforhcp.cigna.com', 'payer'),
    ('caqh', 'CAQH ProView', 'https://proview.caqh.org', 'provider');
INSERT INTO task_type (task_type_id, domain, action, display_name) VALUES
    (md5('task 1')::uuid, 'eligibility', 'verify', 'Eligibility verification'),
    (md5('task 2')::uuid, 'claim', 'claim_inquire', 'Claim status inquiry'),
    (md5('task 3')::uuid, 'prior_auth', 'submit', 'Prior authorization'),
    (md5('task 4')::uuid, 'payment_posting', 'post_era', 'ERA posting');
INSERT INTO field_requirement (requirement_id, task_type_id, portal_id, required_fields,
                               optional_fields, field_metadata, version, active)
VALUES (md5('requirement 1')::uuid, md5('task 1')::uuid, NULL, '["member_id", "patient_dob"]',
        '["group_number"]', '{"member_id": {"pattern": "^[A-Z0-9]{6,12}$"}}', 1, true);
"""

ORGANIZATIONS = """
INSERT INTO organization (org_id, org_type, name, email_domain, created_at)
SELECT md5('org ' || o)::uuid,
       (ARRAY['billing_firm', 'hospital', 'credentialer'])[1 + o %% 3]::org_type,
       'Generated organization ' || o, 'org' || o || '.example', timestamptz '2023-01-01 00:00+00'
  FROM generate_series(1, %(orgs)s) o;
INSERT INTO app_user (user_id, org_id, email, full_name, role, created_at)
SELECT md5('user ' || o || '.' || u)::uuid, md5('org ' || o)::uuid,
       'user' || u || '@org' || o || '.example', 'User ' || u || ' of org ' || o,
       (ARRAY['org_admin', 'firm_user', 'hospital_user'])[1 + u %% 3]::user_role,
       timestamptz '2023-02-01 00:00+00'
  FROM generate_series(1, %(orgs)s) o, generate_series(1, %(users)s) u;
INSERT INTO integration_endpoint (org_id, name, portal_type_id, config, created_at)
SELECT md5('org ' || o)::uuid, p.name, p.portal_type_id,
       jsonb_build_object('max_concurrency', 4, 'credentials', jsonb_build_object(
           'username', 'ops' || o, 'password', 'pw-' || o || '-' || p.code)),
       timestamptz '2023-02-01 00:00+00'
  FROM generate_series(1, %(orgs)s) o, portal_type p
 ORDER BY o, p.portal_type_id;
INSERT INTO task_signature (signature_id, portal_id, domain, action, source)
SELECT md5('signature ' || e.portal_id || ' ' || t.task_type_id)::uuid, e.portal_id, t.domain,
       t.action, 'human'
  FROM integration_endpoint e, task_type t;
"""

# A chain of pages per portal, the last leading back to the second (a cycle).
MEMORY = """
INSERT INTO rcm_state (state_id, portal_id, text_emb, semantic_spec, action, success_ema,
                       page_caption, action_caption, caption_conf, is_retired)
SELECT md5('state ' || e.portal_id || ' ' || s)::uuid, e.portal_id,
       (SELECT jsonb_agg(round(sin(k * 0.37 + s + e.portal_id * 0.1)::numeric, 6))
          FROM generate_series(1, 768) k),
       jsonb_build_object('page', 'page ' || s),
       jsonb_build_object('tool', 'click', 'target', 'Next ' || s),
       0.9, 'Page ' || s || ' of ' || e.name, 'Go on from page ' || s, 0.9, false
  FROM integration_endpoint e, generate_series(1, %(states)s) s;
INSERT INTO rcm_transition (from_state, to_state, action_caption, freq)
SELECT md5('state ' || e.portal_id || ' ' || s)::uuid,
       md5('state ' || e.portal_id || ' ' || CASE WHEN s = %(states)s THEN 2 ELSE s + 1 END)::uuid,
       'next', 10 + s
  FROM integration_endpoint e, generate_series(1, %(states)s) s;
"""

# Jobs of ROWS_PER_JOB rows, organizations taking turns; each row has a trace of three steps.
BATCHES = """
INSERT INTO batch_job (batch_id, org_id, portal_id, task_type_id, status, created_at, completed_at)
SELECT md5('job ' || j)::uuid, e.org_id, e.portal_id, md5('task ' || (1 + j %% 4))::uuid,
       CASE WHEN j %% 10 = 0 THEN 'processing' ELSE 'success' END::job_status,
       timestamptz '2024-01-01 00:00+00' + j * interval '1 minute',
       CASE WHEN j %% 10 <> 0
            THEN timestamptz '2024-01-01 00:30+00' + j * interval '1 minute' END
  FROM generate_series(0, %(jobs)s - 1) j
  JOIN LATERAL (
      SELECT portal_id, org_id FROM integration_endpoint
       WHERE org_id = md5('org ' || (1 + j %% %(orgs)s))::uuid
       ORDER BY portal_id OFFSET (j / %(orgs)s) %% (SELECT count(*) FROM portal_type) LIMIT 1
  ) e ON true;
INSERT INTO rcm_trace (trace_id, portal_id, org_id, task_signature, prompt_version,
                       used_fallback, fallback_model, trace, duration_ms, success, created_at)
SELECT md5('trace ' || r)::uuid, j.portal_id, j.org_id,
       md5('signature ' || j.portal_id || ' ' || j.task_type_id)::uuid, 'v3.2', r %% 20 = 0,
       CASE WHEN r %% 20 = 0 THEN 'gpt-4o-mini' END,
       jsonb_build_array(
           jsonb_build_object('state_id', md5('state ' || j.portal_id || ' 1')::uuid,
                              'action', 'fill User ID', 't_ms', 300 + r %% 97),
           jsonb_build_object('state_id', md5('state ' || j.portal_id || ' 2')::uuid,
                              'action', 'fill Member ID', 't_ms', 500 + r %% 89),
           jsonb_build_object('state_id', md5('state ' || j.portal_id || ' 3')::uuid,
                              'action', 'extract Coverage', 't_ms', 200 + r %% 61)),
       1000 + r %% 247, r %% 13 <> 0, j.created_at + interval '1 second' * (r %% %(per_job)s)
  FROM generate_series(0, %(items)s - 1) r
  JOIN batch_job j ON j.batch_id = md5('job ' || (r / %(per_job)s))::uuid;
INSERT INTO batch_row (row_id, batch_id, row_idx, task_signature, trace_id, status, error_code,
                       error_msg, created_at, updated_at)
SELECT md5('row ' || r)::uuid, md5('job ' || (r / %(per_job)s))::uuid, 1 + r %% %(per_job)s,
       NULL, md5('trace ' || r)::uuid,
       CASE WHEN r %% 13 = 0 THEN 'error' WHEN r %% 101 = 0 THEN 'queued'
            ELSE 'success' END::job_status,
       CASE WHEN r %% 13 = 0 THEN 'NOT_FOUND' END,
       CASE WHEN r %% 13 = 0 THEN 'Member not found' END,
       timestamptz '2024-01-01 00:00+00', timestamptz '2024-01-02 00:00+00'
  FROM generate_series(0, %(items)s - 1) r;
INSERT INTO credential_access_log (access_timestamp, portal_id, access_type, access_by, success)
SELECT timestamptz '2024-02-01 00:00+00' + interval '1 day' * n, e.portal_id::text,
       'retrieve', 'worker', true
  FROM integration_endpoint e, generate_series(1, 3) n;
"""


def legacy_v3_load(url: str, *scripts: Path) -> None:
    """Run SQL files on the database at ``url``, each as one script (a file may COMMIT part
    way, as an ENUM value it adds must be committed before rows use it)."""
    with psycopg.connect(url, autocommit=True) as connection:
        for script in scripts:
            connection.execute(script.read_text(encoding="utf-8"))


def legacy_v3_generate(url: str, *, orgs: int = 4, items: int = 100_000) -> None:
    """Create the v3 schema in the empty database at ``url`` and fill it (module docstring)."""
    legacy_v3_load(url, SCHEMA)
    params = {
        "orgs": orgs,
        "users": USERS_PER_ORG,
        "states": STATES_PER_PORTAL,
        "items": items,
        "per_job": ROWS_PER_JOB,
        "jobs": -(-items // ROWS_PER_JOB),
    }
    with psycopg.connect(url) as connection:
        for script in (PORTAL_TYPES, ORGANIZATIONS, MEMORY, BATCHES):
            for statement in filter(str.strip, script.split(";\n")):
                connection.execute(statement, params)
        connection.execute("ANALYZE")


@contextlib.contextmanager
def legacy_v3_database(server_url: str, name: str, *, copy_of: str = "") -> Iterator[str]:
    """A new database ``name`` on the server of ``server_url`` (whose role may create
    databases): empty, or a copy of the database ``copy_of`` (which nobody may be connected to)
    to change without touching the original. Yields its connection string (--source takes one
    as well as a URL); dropped at the end of the block."""
    database = sql.Identifier(name)
    create = sql.SQL("CREATE DATABASE {}").format(database)
    if copy_of:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(copy_of))
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        connection.execute(create)
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
