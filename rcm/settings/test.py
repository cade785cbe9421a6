"""Test settings: the same real PostgreSQL and Redis as development, faster hashing."""

import os

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Keys and queue of this test session alone: two sessions sharing one Redis (or a `make run`
# beside a test run) would otherwise clear each other's keys and take each other's messages.
CACHES["default"]["KEY_PREFIX"] = f"rcm-test-{os.getpid()}"  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default=f"rcm-test-{os.getpid()}")  # noqa: F405
# A database of this session's own too: two sessions on one server (a developer's and a
# helper's checkout) would otherwise drop each other's test database.
DATABASES["default"]["TEST"] = {"NAME": f"test_rcm_{os.getpid()}"}  # noqa: F405
DEBUG = False
# Keys of the test database alone, public like this file: a token they sign is worth nothing
# elsewhere, and every test process (the worker subprocesses too) agrees on them.
SECRET_KEY = "test-only-django-secret-key-never-used-outside-the-test-suite"
JWT_SIGNING_KEY = "test-only-jwt-signing-key-never-used-outside-the-test-suite"
SIMPLE_JWT["SIGNING_KEY"] = JWT_SIGNING_KEY  # noqa: F405
# The tests' scripted HTTP servers listen on 127.0.0.1.
ENGINE_HTTP_ALLOW_PRIVATE = True
# Static files straight from the apps: tests run without collectstatic, and whitenoise would
# warn at every request that STATIC_ROOT is not there.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
# Browser work on the session's own queue too, where the test workers listen.
CELERY_WEB_QUEUE = CELERY_TASK_DEFAULT_QUEUE
