"""Start-up checks of the memory: the pgvector it needs, and an embedder that can be built."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.utils import DatabaseError

# Iterative index scans (the 0.8 series) keep an organization's search on the HNSW index
# however small its share of its partition; the platform requires 0.8.4 or newer and is tested
# on 0.8.6 (docs/memory.md).
PGVECTOR_MIN = (0, 8, 4)
PGVECTOR_TOO_OLD = (
    "pgvector {found} is installed; the memory needs {needed} or newer (iterative HNSW scans "
    "for organization-filtered search). Upgrade the extension: ALTER EXTENSION vector UPDATE."
)
PGVECTOR_MISSING = "The pgvector extension (vector) is not installed in this database."


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def pgvector_problem(version: str | None) -> str:
    """What is wrong with this pgvector version for the memory ('' if nothing)."""
    if version is None:
        return PGVECTOR_MISSING
    if _version(version) < PGVECTOR_MIN:
        return PGVECTOR_TOO_OLD.format(found=version, needed=".".join(map(str, PGVECTOR_MIN)))
    return ""


@register("database_roles")
def check_pgvector_version(app_configs=None, **kwargs):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
    except DatabaseError as exc:
        return [Error(f"Cannot reach the database to check pgvector: {exc}", id="memory.E001")]
    problem = pgvector_problem(row[0] if row else None)
    return [Error(problem, id="memory.E002")] if problem else []


@register()
def check_embedder(app_configs=None, **kwargs):
    from memory.embeddings import embedder_check

    try:
        embedder_check()
    except ImproperlyConfigured as exc:
        return [Error(f"The memory's embedder cannot start: {exc}", id="memory.E003")]
    return []
