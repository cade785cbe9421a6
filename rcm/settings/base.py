"""Settings shared by every environment. Every variable is read here, through one reader.

See .env.example for the list of variables and README.md for what each one does.
"""

import math
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from rcm.embedded import default_var_dir

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Port of `make run`'s web server on 127.0.0.1.
RCM_PORT = env.int("RCM_PORT", default=8000)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])


def _at_least_one(*names: str) -> None:
    """A count, a number of days or of seconds that must be 1 or more, read above."""
    for name in names:
        if globals()[name] < 1:
            raise ImproperlyConfigured(f"{name} must be at least 1; got {globals()[name]}.")


def _service_urls() -> tuple[str, str, str]:
    """DATABASE_URL/REDIS_URL when set; otherwise the embedded servers under var/."""
    database_url = env.str("DATABASE_URL", default="")
    redis_url = env.str("REDIS_URL", default="")
    owner_url = env.str("DATABASE_OWNER_URL", default="")
    if database_url and redis_url:
        return database_url, owner_url or database_url, redis_url
    if database_url or redis_url:
        raise ImproperlyConfigured(
            "Set both DATABASE_URL and REDIS_URL to use external servers, or neither to run on "
            "the embedded ones."
        )
    if not env.bool("RCM_ALLOW_EMBEDDED", default=True):
        raise ImproperlyConfigured("DATABASE_URL and REDIS_URL must be set (embedded servers off).")
    from rcm import embedded

    urls = embedded.ensure_running()
    return urls.database_url, urls.database_owner_url, urls.redis_url


DATABASE_URL, DATABASE_OWNER_URL, REDIS_URL = _service_urls()

KEYS_REQUIRED = "DJANGO_SECRET_KEY and JWT_SIGNING_KEY must be set (generated keys are off)."


def _signing_keys() -> tuple[str, str]:
    """DJANGO_SECRET_KEY and JWT_SIGNING_KEY when set; otherwise the keys generated under var/.

    There is no key in the code: a default written here would be public, and anyone could sign
    a token for any user with it. The web server, the worker and beat read the same file.
    """
    from_env = env.str("DJANGO_SECRET_KEY", default=""), env.str("JWT_SIGNING_KEY", default="")
    if all(from_env):
        return from_env
    if not env.bool("RCM_GENERATE_KEYS", default=True):
        raise ImproperlyConfigured(KEYS_REQUIRED)
    from rcm import embedded, keys

    generated = keys.keys_load(var_dir=embedded.default_var_dir().resolve())
    return from_env[0] or generated.secret_key, from_env[1] or generated.jwt_signing_key


SECRET_KEY, JWT_SIGNING_KEY = _signing_keys()

CREDENTIAL_KEYS_REQUIRED = "RCM_CREDENTIAL_KEYS must be set (generated keys are off)."
CREDENTIAL_KEY_INVALID = (
    "RCM_CREDENTIAL_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded "
    'bytes); make one with `python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"`.'
)


def _credential_keys() -> list[str]:
    """The keys that encrypt portal credentials, newest first: the first encrypts, every one
    decrypts, so a new key goes in front and the old ones stay until `rotate_credential_keys`
    has re-encrypted everything. Generated under var/ like the signing keys where allowed."""
    from cryptography.fernet import Fernet

    keys = env.list("RCM_CREDENTIAL_KEYS", default=[])
    if not keys:
        if not env.bool("RCM_GENERATE_KEYS", default=True):
            raise ImproperlyConfigured(CREDENTIAL_KEYS_REQUIRED)
        from rcm import keys as generated

        keys = generated.credential_keys_load(var_dir=default_var_dir().resolve())
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # The position, never the key: a settings error is printed and logged.
            raise ImproperlyConfigured(CREDENTIAL_KEY_INVALID.format(position=position)) from None
    return keys


CREDENTIAL_KEYS = _credential_keys()
# The sandbox payer portal at /sandbox/ (webactions/sandbox): on in development and tests,
# forced off in production (rcm/settings/production.py).
RCM_SANDBOX = env.bool("RCM_SANDBOX", default=True)
RCM_SANDBOX_SESSION_MINUTES = env.int("RCM_SANDBOX_SESSION_MINUTES", default=30)
_at_least_one("RCM_SANDBOX_SESSION_MINUTES")
# How long a portal log-in (its cookies) is reused before the next row logs in again; a portal
# that ends it sooner shows its log-in page, and the row logs in again then.
WEB_SESSION_TTL = timedelta(minutes=env.int("WEB_SESSION_TTL_MINUTES", default=20))
# Which browser context an attempt gets (webactions/pool.py): "credential", the login's own,
# kept between its attempts in a worker process (a new page each time); "attempt", a new one
# every time. And how many kept contexts a worker process holds at most.
WEB_BROWSER_CONTEXT = env.str("WEB_BROWSER_CONTEXT", default="credential")
if WEB_BROWSER_CONTEXT not in ("credential", "attempt"):
    raise ImproperlyConfigured(
        f"WEB_BROWSER_CONTEXT must be 'credential' or 'attempt'; got {WEB_BROWSER_CONTEXT!r}."
    )
WEB_BROWSER_CONTEXTS_KEPT = env.int("WEB_BROWSER_CONTEXTS_KEPT", default=8)
_at_least_one("WEB_BROWSER_CONTEXTS_KEPT")
# Screenshots of portal pages are PHI: beat deletes them this many days after they were taken.
WEB_SCREENSHOT_RETENTION_DAYS = env.int("WEB_SCREENSHOT_RETENTION_DAYS", default=30)
_at_least_one("WEB_SCREENSHOT_RETENTION_DAYS")
# The Chromium the web agent drives; empty: found where Debian installs it (webactions/browser.py).
RCM_CHROMIUM_PATH = env.str("RCM_CHROMIUM_PATH", default="")

WEB_LLM_URL_INVALID = (
    "WEB_LLM_URL must be an http or https URL, the base that /chat/completions is added to "
    "(https://api.openai.com/v1), or empty to leave the model off."
)
WEB_LLM_MODEL_REQUIRED = "WEB_LLM_MODEL must be set when WEB_LLM_URL is (the provider's model)."
WEB_LLM_TIMEOUT_INVALID = "WEB_LLM_TIMEOUT_S must be a positive number of seconds; got {value}."


def web_llm_check(*, url: str, model: str, timeout_s: float) -> None:
    """Refuse a tier-3 model configuration that could not work. The URL is never quoted: it may
    carry a user and password, and a settings error is printed and logged."""
    if url:
        if not _is_http_url(url):
            raise ImproperlyConfigured(WEB_LLM_URL_INVALID)
        if not model:
            raise ImproperlyConfigured(WEB_LLM_MODEL_REQUIRED)
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ImproperlyConfigured(WEB_LLM_TIMEOUT_INVALID.format(value=timeout_s))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        # Reading the port refuses one that is not a number, as the first request would.
        has_host = bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # "http://h:port", "http://[::1"
        return False
    return parts.scheme in ("http", "https") and has_host


# Tier 3 of resolving a page element (webactions/llm.py): an OpenAI-compatible chat model picks
# one of the candidates when memory and repair could not. Off while WEB_LLM_URL is empty; what
# it is sent is masked, but it still leaves the platform, so it is the operator's choice.
WEB_LLM_URL = env.str("WEB_LLM_URL", default="")
WEB_LLM_MODEL = env.str("WEB_LLM_MODEL", default="")
WEB_LLM_API_KEY = env.str("WEB_LLM_API_KEY", default="")
WEB_LLM_TIMEOUT_S = env.float("WEB_LLM_TIMEOUT_S", default=20.0)
web_llm_check(url=WEB_LLM_URL, model=WEB_LLM_MODEL, timeout_s=WEB_LLM_TIMEOUT_S)


def _database(url: str) -> dict:
    config = environ.Env.db_url_config(url)
    # Our backend: PostgreSQL plus the per-transaction organization context (rcm/db/backend).
    config["ENGINE"] = "rcm.db.backend"
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    config["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default="test_rcm")}
    # Names this process's connections in pg_stat_activity.
    config.setdefault("OPTIONS", {})["application_name"] = f"rcm-{os.getpid()}"
    # A server that does not answer (a host down, a network cut) fails a connection attempt
    # within this many seconds instead of the system's TCP timeout (minutes): the workers then
    # wait the outage out in short retries (rcm/db/outage.py) and resume soon after it ends.
    config["OPTIONS"].setdefault("connect_timeout", 5)
    return config


DATABASES = {"default": _database(DATABASE_URL)}
# Migrations and test-database creation connect with these credentials instead (rcm/db/roles).
DATABASE_OWNER = environ.Env.db_url_config(DATABASE_OWNER_URL)
# NOLOGIN, BYPASSRLS: owns the SECURITY DEFINER functions (auth lookups, audit chain).
DATABASE_DEFINER_ROLE = env.str("DATABASE_DEFINER_ROLE", default="rcm_definer")
# NOLOGIN, BYPASSRLS, SELECT on every table; the owner takes it (SET ROLE) to back up and to
# validate across organizations (dbadmin/backups.py, dbadmin/validation.py).
DATABASE_MAINTENANCE_ROLE = env.str("DATABASE_MAINTENANCE_ROLE", default="rcm_maintenance")

INSTALLED_APPS = [
    # rcm first: its `migrate` command wraps Django's to run as the owner role.
    "rcm.apps.RcmConfig",
    "rcm.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenants.apps.TenantsConfig",
    "workflows.apps.WorkflowsConfig",
    "memory.apps.MemoryConfig",
    "webactions.apps.WebactionsConfig",
    "console.apps.ConsoleConfig",
    "dbadmin.apps.DbadminConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, Swagger UI's) from the web server itself, before the rest of
    # the stack: no proxy needs to serve them, and they cost no session or database work.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "rcm.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.AdminOrgContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rcm.urls"
WSGI_APPLICATION = "rcm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["tenants.authentication.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Times to the second on every page (rcm/formats/): a run's start and end a second apart.
FORMAT_MODULE_PATH = ["rcm.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Filled by `collectstatic` (runplatform runs it before starting the web server); None in the
# tests, which serve the apps' own files.
STATIC_ROOT: Path | None = default_var_dir().resolve() / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies (gzip, Brotli where installed) made at collectstatic, served to clients
    # that accept them. Not the manifest variant: its {% static %} fails for a file not yet
    # collected, and tests render admin pages without collecting.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Static files are named without a content hash, so they are cached for an hour, not forever.
WHITENOISE_MAX_AGE = 3600
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.OrgJWTAuthentication",
        "tenants.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rcm.api.parsers.CheckedJSONParser"],
    "DEFAULT_METADATA_CLASS": "rcm.api.metadata.AllowedMethodsMetadata",
    "DEFAULT_PAGINATION_CLASS": "rcm.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "rcm.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env.str("RCM_LOGIN_RATE_PER_IP", default="20/min"),
        "login_email": env.str("RCM_LOGIN_RATE_PER_EMAIL", default="5/min"),
        # Failed invitation redemptions (an unknown or spent token) per client IP.
        "redeem_ip": env.str("RCM_REDEEM_RATE_PER_IP", default="10/min"),
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "RCM platform API",
    "DESCRIPTION": "Version 2 of the RCM automation API. Every object belongs to the "
    "organization in your token.",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "rcm.api.schema.error_responses",
    ],
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "rcm",
        # A Redis that hangs instead of refusing must not hang the requests that count
        # log-ins: past these the caller falls back (tenants/throttling.py).
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="rcm")
# Browser work (the web node kind) has a queue and workers of its own: a slow portal never
# holds the engine's workers.
CELERY_WEB_QUEUE = env.str("CELERY_WEB_QUEUE", default="web")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged message after the visibility timeout. With acks_late a
# message stays unacknowledged while its node runs, and retries wait on the broker (countdown):
# the timeout must outlast both, or a slow node would run twice. Longest node timeout: 1800 s
# (workflows.engine.graph.MAX_NODE_TIMEOUT_S); longest retry interval: 3600 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
# A worker process whose resident memory has passed this many KiB (Celery's unit) when a task
# ends is replaced by a fresh one before the next: a task that grew its process (a large HTTP
# answer, a large context) leaves no bloated process behind to be killed later under someone
# else's task. 512 MiB; a process idles at about 115 MB with everything imported (measured), so
# a limit under 256 MiB would replace processes after ordinary tasks. It acts between tasks: a
# single task is held by the engine's own bounds (templates, uploads), not by this.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int(
    "CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=512 * 1024
)
if CELERY_WORKER_MAX_MEMORY_PER_CHILD < 256 * 1024:
    raise ImproperlyConfigured(
        "CELERY_WORKER_MAX_MEMORY_PER_CHILD is in KiB and must be at least 262144 (256 MiB); "
        f"got {CELERY_WORKER_MAX_MEMORY_PER_CHILD}."
    )

# The engine (workflows/engine/attempts.py). A claimed attempt's lease is its node's timeout
# plus this grace; past it the reaper takes the attempt back as lost.
ENGINE_LEASE_GRACE_S = env.int("ENGINE_LEASE_GRACE_S", default=30)
# A ready node run whose message has not been consumed after this long is sent again.
ENGINE_REQUEUE_AFTER_S = env.int("ENGINE_REQUEUE_AFTER_S", default=60)
ENGINE_REAPER_INTERVAL_S = env.int("ENGINE_REAPER_INTERVAL_S", default=5)
# The http node kind refuses loopback, private and link-local addresses unless this is set.
ENGINE_HTTP_ALLOW_PRIVATE = env.bool("ENGINE_HTTP_ALLOW_PRIVATE", default=False)
_at_least_one("ENGINE_LEASE_GRACE_S", "ENGINE_REQUEUE_AFTER_S", "ENGINE_REAPER_INTERVAL_S")
CELERY_BEAT_SCHEDULE = {
    "audit-retention": {
        "task": "tenants.audit_event_purge",
        # Daily, off-peak: the purge locks the audit chain while it moves the anchor.
        "schedule": crontab(hour=3, minute=17),
    },
    "idempotency-keys": {"task": "rcm.idempotency_key_purge", "schedule": crontab(minute=7)},
    "batch-feeder": {"task": "workflows.batch_feed", "schedule": timedelta(seconds=5)},
    "engine-reaper": {
        "task": "workflows.engine_reap",
        "schedule": timedelta(seconds=ENGINE_REAPER_INTERVAL_S),
    },
    # Ad-hoc web actions whose message was lost or whose worker died (webactions/tasks.py).
    "web-actions-reaper": {
        "task": "webactions.web_actions_reap",
        "schedule": timedelta(seconds=ENGINE_REAPER_INTERVAL_S),
    },
    # Console uploads never started (workflows/services/batch_staging.py).
    "batch-upload-staging": {
        "task": "workflows.batch_upload_staging_purge",
        "schedule": timedelta(minutes=10),
    },
    "screenshot-retention": {
        "task": "webactions.screenshot_purge",
        "schedule": crontab(hour=3, minute=41),
    },
}

# Batch uploads (workflows/validation/files.py): the largest file and the most rows one upload
# may carry; over either is a 413 naming the limit.
BATCH_MAX_UPLOAD_BYTES = env.int("BATCH_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
BATCH_MAX_ROWS = env.int("BATCH_MAX_ROWS", default=100_000)
# The console's upload waits here between choosing the file and starting the batch
# (workflows/services/batch_staging.py), bound to its organization and user and deleted once
# started or after BATCH_STAGING_TTL_S. Several web servers need one shared directory.
BATCH_STAGING_DIR = Path(
    env.str("BATCH_STAGING_DIR", default=str(default_var_dir().resolve() / "batch-staging"))
)
BATCH_STAGING_TTL_S = env.int("BATCH_STAGING_TTL_S", default=3600)

# Backups (dbadmin: rcm_backup, rcm_restore, rcm_rollback; docs/migration.md). Where rcm_backup
# writes when not given --output, and rcm_rollback its safety backup: every file is a copy of
# every organization's data, PHI included, so the directory is created private (0700).
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(default_var_dir().resolve() / "backups")))
# The directory of pg_dump, pg_restore and psql of the server's major version. Empty: the
# embedded server's own, else the ones on PATH; a version other than the server's is refused.
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")

# Memory (memory/): the embedder that turns pages into 768-D vectors, and the rules of the
# micro-state store. See docs/memory.md.
#   structural            deterministic, offline: the page's structure hashed (the default)
#   sentence-transformers a local model (MEMORY_EMBEDDER_MODEL: a name in the local cache or a
#                         path); loaded offline, never downloaded
#   http                  an OpenAI-compatible /embeddings service at MEMORY_EMBEDDER_URL
MEMORY_EMBEDDER = env.str("MEMORY_EMBEDDER", default="structural")
MEMORY_EMBEDDER_MODEL = env.str("MEMORY_EMBEDDER_MODEL", default="")
MEMORY_EMBEDDER_URL = env.str("MEMORY_EMBEDDER_URL", default="")
MEMORY_EMBEDDER_API_KEY = env.str("MEMORY_EMBEDDER_API_KEY", default="")
# The http model's own dimension (at most 768; smaller vectors are zero-padded to 768).
MEMORY_EMBEDDER_DIMENSION = env.int("MEMORY_EMBEDDER_DIMENSION", default=768)
MEMORY_EMBEDDER_TIMEOUT_S = env.float("MEMORY_EMBEDDER_TIMEOUT_S", default=10.0)
# A page at least this similar to a stored state is the same page (V8: 0.80).
MEMORY_SAME_PAGE_THRESHOLD = env.float("MEMORY_SAME_PAGE_THRESHOLD", default=0.80)
# Success scoring: an exponential moving average with this weight on the newest outcome; a
# state retires itself when its average falls below MEMORY_RETIRE_BELOW after at least
# MEMORY_RETIRE_MIN_OUTCOMES outcomes.
MEMORY_EMA_ALPHA = env.float("MEMORY_EMA_ALPHA", default=0.2)
MEMORY_RETIRE_BELOW = env.float("MEMORY_RETIRE_BELOW", default=0.3)
MEMORY_RETIRE_MIN_OUTCOMES = env.int("MEMORY_RETIRE_MIN_OUTCOMES", default=5)
# The largest DOM snapshot a state may be stored from (bytes, UTF-8); over it is a 413.
MEMORY_MAX_DOM_BYTES = env.int("MEMORY_MAX_DOM_BYTES", default=2 * 1024 * 1024)
for _name in ("MEMORY_SAME_PAGE_THRESHOLD", "MEMORY_EMA_ALPHA", "MEMORY_RETIRE_BELOW"):
    if not 0 <= globals()[_name] <= 1:
        raise ImproperlyConfigured(f"{_name} must be between 0 and 1; got {globals()[_name]}.")
_at_least_one("MEMORY_RETIRE_MIN_OUTCOMES")

# Memberships by invitation (docs/security.md): how long an invitation stays open, how its
# mail is sent, and the address the link in it points at.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
_at_least_one("INVITATION_TTL_DAYS")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="rcm-platform@localhost")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=6 * 366)
if AUDIT_RETENTION_DAYS < 6 * 365:
    raise ImproperlyConfigured(
        "AUDIT_RETENTION_DAYS must be at least 2190 (six years, the HIPAA minimum); "
        f"got {AUDIT_RETENTION_DAYS}."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# app_user.email is unique case-insensitively (a functional unique index on lower(email)),
# which Django's check for a plain unique=True cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
