"""The durable workflow engine: a run's node runs are claimed, executed and recorded one
attempt at a time, and what runs next is decided as each one ends.

* attempts.py: claim a node run under a lease, run its kind, record its outcome.
* decisions.py: edge states, trigger rules and joins, dead paths, a run's beginning and end.
* recovery.py: attempts whose worker died, lost messages, runs past their deadline.
* dispatch.py: the "execute node run N" message; completion.py: a completion's one-statement
  write; traces.py: trace rows; graph.py: a revision's graph (cached).

Durability rules (DESIGN §6):

* The state is in PostgreSQL. A Celery message only says "execute node run N"; it is sent
  after the transaction that made N ready commits.
* A node run is claimed with a conditional UPDATE (ready -> running, attempt + 1, a lease):
  a message delivered twice, or a stale one, claims nothing and does nothing.
* The result is written only if the claim still holds (same attempt, still running): an attempt
  the reaper has taken back (its worker died) cannot complete after the fact.
* Completions of one run are serialised by a lock on the run row, so that two parallel
  branches finishing together decide their join exactly once.
* A lost attempt counts as a failed attempt of kind ``worker_lost`` and is retried per the
  node's policy, like any system failure. It is taken back as soon as it is known to be lost:
  by the worker's main process when Celery reports the pool process running it gone, by a
  worker restarted under the same node name, and in any case by the reaper once its lease ends.
* The database going away for a while loses no result: the outcome of an attempt that ran is
  recorded once the database answers again (rcm.db.outage), within the attempt's lease.
"""
