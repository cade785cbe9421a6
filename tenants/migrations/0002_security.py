"""Lookup rows, the portal catalogue, row-level security and the SECURITY DEFINER functions."""

from django.db import migrations

from rcm.db.definer import definer_functions
from rcm.db.rls import CURRENT_ORG, EnableRowLevelSecurity
from rcm.lookups import ChannelAuthType, OrgType, UserRole, seed_operation

# A user is visible in the organization that is their home and in every organization they are
# a member of (DESIGN §5: identity tables widen USING to the organization's members, no more).
APP_USER_VISIBLE = (
    f"org_id = {CURRENT_ORG} OR EXISTS (SELECT 1 FROM user_organization m "  # noqa: S608 - constant policy text, no input
    f"WHERE m.user_id = app_user.user_id AND m.org_id = {CURRENT_ORG})"
)

V8_CHANNEL_TYPES = [
    # code, name, base_url, endpoint_kind, access_medium, auth_type
    (
        "anthem-availity",
        "Anthem via Availity",
        "https://apps.availity.com",
        "payer",
        "web",
        "username_password",
    ),
    (
        "uhc-portal",
        "UnitedHealthcare Provider Portal",
        "https://www.uhcprovider.com",
        "payer",
        "web",
        "username_password",
    ),
    (
        "aetna-provider",
        "Aetna Provider Portal",
        "https://www.aetna.com/health-care-professionals",
        "payer",
        "web",
        "username_password",
    ),
    (
        "state-medicaid-phone",
        "State Medicaid (phone line)",
        "",
        "payer",
        "phone",
        "username_password",
    ),
]

FUNCTIONS = """
CREATE FUNCTION auth_user_by_email(p_email text) RETURNS SETOF app_user
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT * FROM app_user WHERE lower(email) = lower(p_email) $$;

CREATE FUNCTION auth_user_by_id(p_user_id uuid) RETURNS SETOF app_user
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT * FROM app_user WHERE user_id = p_user_id $$;

CREATE FUNCTION auth_memberships(p_user_id uuid)
    RETURNS TABLE (org_id uuid, org_name text, role text, is_primary boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT m.org_id, o.name::text, m.role::text, m.is_primary
        FROM user_organization m JOIN organization o ON o.org_id = m.org_id
        WHERE m.user_id = p_user_id AND m.is_active AND o.is_active
        ORDER BY m.is_primary DESC, m.created_at, m.id
    $$;

CREATE FUNCTION auth_org_is_active(p_org_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT EXISTS (SELECT 1 FROM organization WHERE org_id = p_org_id AND is_active) $$;

CREATE FUNCTION auth_api_key(p_prefix text)
    RETURNS TABLE (id bigint, org_id uuid, user_id uuid, key_hash text, revoked boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT k.id, k.org_id, k.user_id, k.key_hash::text, k.revoked_at IS NOT NULL
        FROM api_key k WHERE k.prefix = p_prefix
    $$;

-- The audit chain. audit_chain_head remembers the anchor (the prev_hash of the oldest kept
-- row, which moves when retention purges) and the newest hash, so that deleting the newest
-- rows is caught as surely as editing or deleting any other.
CREATE TABLE audit_chain_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    anchor_hash char(64) NOT NULL,
    last_hash char(64) NOT NULL,
    last_id bigint
);
INSERT INTO audit_chain_head VALUES (1, repeat('0', 64), repeat('0', 64), NULL);

CREATE FUNCTION audit_event_digest(e audit_event) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp
    AS $$
        SELECT encode(sha256(convert_to(concat_ws('|',
            e.prev_hash, e.id, coalesce(e.org_id::text, ''), coalesce(e.actor_id::text, ''),
            e.actor_email, e.action, e.object_type, e.object_id,
            coalesce(host(e.ip_address), ''), e.request_id, e.details::text,
            to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
        ), 'UTF8')), 'hex')
    $$;

CREATE FUNCTION audit_event_append(
    p_org uuid, p_actor uuid, p_actor_email text, p_action text, p_object_type text,
    p_object_id text, p_ip inet, p_request_id text, p_details jsonb
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    DECLARE
        v_row audit_event;
    BEGIN
        -- One writer at a time until commit: every row links to a committed predecessor.
        PERFORM pg_advisory_xact_lock(hashtext('audit_event_chain'));
        SELECT last_hash INTO v_row.prev_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE;
        v_row.id := nextval(pg_get_serial_sequence('audit_event', 'id'));
        v_row.org_id := p_org;
        v_row.actor_id := p_actor;
        v_row.actor_email := coalesce(p_actor_email, '');
        v_row.action := p_action;
        v_row.object_type := coalesce(p_object_type, '');
        v_row.object_id := coalesce(p_object_id, '');
        v_row.ip_address := p_ip;
        v_row.request_id := coalesce(p_request_id, '');
        v_row.details := coalesce(p_details, '{}'::jsonb);
        v_row.created_at := date_trunc('microseconds', clock_timestamp());
        v_row.hash := audit_event_digest(v_row);
        INSERT INTO audit_event SELECT v_row.*;
        UPDATE audit_chain_head SET last_hash = v_row.hash, last_id = v_row.id WHERE id = 1;
        RETURN v_row.id;
    END
    $$;

CREATE FUNCTION audit_event_verify() RETURNS TABLE (checked bigint, first_bad_id bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    DECLARE
        v_head audit_chain_head;
        v_expected text;
        r audit_event;
    BEGIN
        SELECT * INTO v_head FROM audit_chain_head WHERE id = 1;
        v_expected := v_head.anchor_hash;
        checked := 0;
        FOR r IN SELECT * FROM audit_event ORDER BY id LOOP
            IF r.prev_hash <> v_expected OR r.hash <> audit_event_digest(r) THEN
                first_bad_id := r.id;
                RETURN NEXT;
                RETURN;
            END IF;
            v_expected := r.hash;
            checked := checked + 1;
        END LOOP;
        -- Rows missing at the end: the chain stops short of the recorded head.
        IF v_expected <> v_head.last_hash THEN
            first_bad_id := coalesce(v_head.last_id, 0);
        END IF;
        RETURN NEXT;
    END
    $$;

CREATE FUNCTION audit_event_purge(p_before timestamptz) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    DECLARE
        v_last_deleted audit_event;
        v_count bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('audit_event_chain'));
        SELECT * INTO v_last_deleted FROM audit_event
            WHERE created_at < p_before ORDER BY id DESC LIMIT 1;
        IF v_last_deleted.id IS NULL THEN
            RETURN 0;
        END IF;
        PERFORM set_config('rcm.audit_purge', 'on', true);
        DELETE FROM audit_event WHERE id <= v_last_deleted.id;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        PERFORM set_config('rcm.audit_purge', 'off', true);
        UPDATE audit_chain_head SET anchor_hash = v_last_deleted.hash WHERE id = 1;
        RETURN v_count;
    END
    $$;

CREATE FUNCTION audit_event_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('rcm.audit_purge', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_immutable();
"""

DEFINER_FUNCTIONS = [
    "auth_user_by_email(text)",
    "auth_user_by_id(uuid)",
    "auth_memberships(uuid)",
    "auth_org_is_active(uuid)",
    "auth_api_key(text)",
    "audit_event_append(uuid, uuid, text, text, text, text, inet, text, jsonb)",
    "audit_event_verify()",
    "audit_event_purge(timestamptz)",
]


DROP_SQL = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;
DROP FUNCTION IF EXISTS audit_event_immutable();
"""
DROP_AFTER_FUNCTIONS = """
DROP FUNCTION IF EXISTS audit_event_digest(audit_event);
DROP TABLE IF EXISTS audit_chain_head;
"""


def seed_channel_types(apps, schema_editor):
    channel_type = apps.get_model("tenants", "ChannelType")
    for code, name, base_url, kind, medium, auth_type in V8_CHANNEL_TYPES:
        channel_type.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "base_url": base_url,
                "endpoint_kind": kind,
                "access_medium": medium,
                "auth_type_id": auth_type,
            },
        )


def unseed_channel_types(apps, schema_editor):
    codes = [row[0] for row in V8_CHANNEL_TYPES]
    apps.get_model("tenants", "ChannelType").objects.filter(code__in=codes).delete()


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        seed_operation("tenants.OrgTypeLu", OrgType),
        seed_operation("tenants.UserRoleLu", UserRole),
        seed_operation("tenants.ChannelAuthTypeLu", ChannelAuthType),
        migrations.RunPython(seed_channel_types, unseed_channel_types),
        EnableRowLevelSecurity("organization"),
        EnableRowLevelSecurity("app_user", using=APP_USER_VISIBLE, check=APP_USER_VISIBLE),
        EnableRowLevelSecurity("user_organization"),
        EnableRowLevelSecurity("endpoint"),
        EnableRowLevelSecurity("api_key"),
        EnableRowLevelSecurity("audit_event"),
        # Undone after the functions below (reverse order): the helpers they use go last.
        migrations.RunSQL(migrations.RunSQL.noop, DROP_AFTER_FUNCTIONS),
        definer_functions(
            sql=FUNCTIONS,
            signatures=DEFINER_FUNCTIONS,
            grants=[
                "SELECT ON app_user, user_organization, organization, api_key",
                "SELECT, INSERT, DELETE ON audit_event",
                "SELECT, UPDATE ON audit_chain_head",
                "USAGE ON SEQUENCE audit_event_id_seq",
            ],
            drop_sql=DROP_SQL,
        ),
    ]
