-- The pre-V8 ("v3") schema, as ../shared/LEGACY_V3.md describes it: the shape rcm_import_legacy
-- reads. legacy_v3_generate (dbadmin/legacy/generate.py) and the tests' fixture
-- (tests/fixtures/legacy_v3.sql) build their v3 databases on it.

CREATE TYPE org_type AS ENUM ('hospital', 'billing_firm', 'credentialer');
CREATE TYPE endpoint_kind AS ENUM ('payer', 'provider');
CREATE TYPE user_role AS ENUM ('org_admin', 'firm_user', 'hospital_user', 'sys_admin');
CREATE TYPE job_status AS ENUM ('queued', 'processing', 'success', 'error');
CREATE TYPE task_signature_source AS ENUM ('human', 'ai');
CREATE TYPE task_domain AS ENUM (
    'eligibility', 'claim', 'prior_auth', 'credentialing', 'coding', 'charge_capture',
    'denial_mgmt', 'payment_posting', 'ar_followup', 'patient_access'
);
CREATE TYPE task_action AS ENUM (
    'verify', 'batch_verify', 'benefits_breakdown', 'coverage_discovery', 'request', 'submit',
    'inquire', 'appeal', 'extend', 'expedite', 'claim_submit', 'claim_inquire', 'claim_correct',
    'claim_appeal', 'claim_void', 'provider_enroll', 'credential_verify', 'privilege_update',
    'revalidate', 'caqh_update', 'assign_codes', 'audit_codes', 'query_physician', 'code_review',
    'charge_entry', 'charge_audit', 'charge_reconcile', 'denial_review', 'denial_appeal',
    'denial_followup', 'denial_prevent', 'post_era', 'post_manual', 'reconcile_payment',
    'identify_variance', 'ar_review', 'ar_followup', 'ar_appeal', 'ar_writeoff',
    'register_patient', 'verify_demographics', 'insurance_discovery', 'estimate_copay',
    'status_check', 'denial_follow_up'
);

CREATE TABLE organization (
    org_id uuid PRIMARY KEY,
    org_type org_type NOT NULL,
    name text NOT NULL UNIQUE,
    email_domain text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app_user (
    user_id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization,
    email text NOT NULL UNIQUE,
    full_name text,
    role user_role NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz
);

CREATE TABLE portal_type (
    portal_type_id serial PRIMARY KEY,
    code text UNIQUE,
    name text NOT NULL,
    base_url text NOT NULL,
    endpoint_kind endpoint_kind NOT NULL
);

CREATE TABLE integration_endpoint (
    portal_id serial PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization,
    name text NOT NULL,
    portal_type_id integer NOT NULL REFERENCES portal_type,
    base_url text,
    config jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz DEFAULT now(),
    secret_arn text,
    last_rotated_at timestamptz,
    rotation_status text,
    UNIQUE (org_id, name),
    UNIQUE (org_id, portal_type_id)
);

CREATE TABLE task_type (
    task_type_id uuid PRIMARY KEY,
    domain task_domain NOT NULL,
    action task_action NOT NULL,
    display_name text NOT NULL,
    description text,
    created_at timestamptz DEFAULT now()
);

CREATE TABLE field_requirement (
    requirement_id uuid PRIMARY KEY,
    task_type_id uuid NOT NULL REFERENCES task_type,
    portal_id integer REFERENCES integration_endpoint,
    required_fields jsonb NOT NULL,
    optional_fields jsonb NOT NULL,
    field_metadata jsonb NOT NULL,
    version integer NOT NULL,
    active boolean NOT NULL,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz
);

CREATE TABLE rcm_trace (
    trace_id uuid PRIMARY KEY,
    portal_id integer NOT NULL REFERENCES integration_endpoint,
    org_id uuid NOT NULL REFERENCES organization,
    task_signature uuid,
    prompt_version varchar(20),
    used_fallback boolean,
    fallback_model text,
    trace jsonb NOT NULL,
    duration_ms integer,
    success boolean,
    created_at timestamptz DEFAULT now()
);

CREATE TABLE batch_job (
    batch_id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization,
    portal_id integer NOT NULL REFERENCES integration_endpoint,
    task_type_id uuid NOT NULL REFERENCES task_type,
    status job_status NOT NULL,
    created_at timestamptz DEFAULT now(),
    completed_at timestamptz,
    result_url text
);

CREATE TABLE batch_row (
    row_id uuid PRIMARY KEY,
    batch_id uuid NOT NULL REFERENCES batch_job,
    row_idx integer NOT NULL,
    task_signature uuid,
    trace_id uuid REFERENCES rcm_trace,
    status job_status NOT NULL,
    error_code text,
    error_msg text,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz
);

CREATE TABLE rcm_state (
    state_id uuid PRIMARY KEY,
    portal_id integer NOT NULL REFERENCES integration_endpoint,
    text_emb jsonb,
    semantic_spec jsonb NOT NULL,
    action jsonb NOT NULL,
    success_ema double precision NOT NULL DEFAULT 1.0,
    page_caption text,
    action_caption text,
    caption_conf numeric(3, 2),
    macro_state_id uuid,
    is_retired boolean NOT NULL DEFAULT false,
    alias_state_id uuid REFERENCES rcm_state
);

CREATE TABLE rcm_transition (
    from_state uuid REFERENCES rcm_state,
    to_state uuid REFERENCES rcm_state,
    action_caption text NOT NULL,
    freq integer NOT NULL CHECK (freq >= 1),
    PRIMARY KEY (from_state, to_state, action_caption)
);

CREATE TABLE task_signature (
    signature_id uuid PRIMARY KEY,
    portal_id integer REFERENCES integration_endpoint,
    portal_type_id integer REFERENCES portal_type,
    domain task_domain NOT NULL,
    action task_action NOT NULL,
    source task_signature_source NOT NULL,
    alias_of uuid REFERENCES task_signature,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz,
    CHECK ((portal_id IS NULL) <> (portal_type_id IS NULL))
);

CREATE TABLE credential_access_log (
    id serial PRIMARY KEY,
    access_timestamp timestamptz NOT NULL,
    portal_id text NOT NULL,
    secret_arn text,
    access_type text,
    access_by text,
    ip_address text,
    user_agent text,
    success boolean NOT NULL,
    error_message text,
    metadata jsonb
);
