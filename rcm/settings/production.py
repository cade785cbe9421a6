"""Production settings: no defaults for secrets, no embedded servers, no generated keys."""

import os

from django.core.exceptions import ImproperlyConfigured

# Never start embedded servers in production: a missing URL is a configuration error.
os.environ.setdefault("RCM_ALLOW_EMBEDDED", "false")
# Nor generate keys: replicas on several machines would each make their own, and a key on a
# server's disk outlives the secret store's rotation. The base settings refuse to start instead.
os.environ.setdefault("RCM_GENERATE_KEYS", "false")

from .base import *  # noqa: E402,F403
from .base import JWT_SIGNING_KEY, SECRET_KEY, env  # noqa: E402

# HS256 keys shorter than its 256-bit hash are guessable offline from one token (RFC 7518 §3.2).
MIN_KEY_LENGTH = 32
KEY_TOO_SHORT = "{name} must be at least {length} characters in production."

DEBUG = False
# A made-up payer portal has no place beside real patients' data.
RCM_SANDBOX = False
for required in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL"):
    if not env.str(required, default=""):
        raise ImproperlyConfigured(f"{required} must be set in production.")
for name, key in (("DJANGO_SECRET_KEY", SECRET_KEY), ("JWT_SIGNING_KEY", JWT_SIGNING_KEY)):
    if len(key) < MIN_KEY_LENGTH:
        raise ImproperlyConfigured(KEY_TOO_SHORT.format(name=name, length=MIN_KEY_LENGTH))
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
