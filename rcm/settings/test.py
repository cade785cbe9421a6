"""Test settings: the same real PostgreSQL and Redis as development, faster hashing."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = "rcm-test"  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = "rcm-test"
DEBUG = False
