"""Production settings: no defaults for secrets, no embedded servers."""

import os

from django.core.exceptions import ImproperlyConfigured

# Never start embedded servers in production: a missing URL is a configuration error.
os.environ.setdefault("RCM_ALLOW_EMBEDDED", "false")

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

DEBUG = False
for required in ("DJANGO_SECRET_KEY", "DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL"):
    if not env.str(required, default=""):
        raise ImproperlyConfigured(f"{required} must be set in production.")
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_SIGNING_KEY", default=SECRET_KEY)  # noqa: F405
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
