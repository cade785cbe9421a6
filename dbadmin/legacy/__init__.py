"""The v3 import (``manage.py rcm_import_legacy``, docs/legacy-import.md).

- ``source``: the v3 database, read in one snapshot, in chunks;
- ``values``: v3 ENUM values and what they become in V8 (lookups, renames, ``--map``);
- ``idmap``, ``bulk``, ``tables``: the map of v3 rows to V8 rows, and writing many rows at once;
- ``catalog``, ``requirements``, ``orgs``, ``signatures``, ``memory``, ``batches``: a module per
  group of tables, in the order ``importer`` runs them;
- ``report``: what a run did; ``generate``: v3 databases to import, for tests and benchmarks.
"""
