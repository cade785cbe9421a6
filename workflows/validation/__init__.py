"""Checks and readers of what people send: a workflow graph (graph.py), an input row against a
task's effective fields (rows.py, with the field shape in fields.py), and an uploaded file read
into rows (files.py). They write nothing, so that selectors and services alike can check with
them, and read nothing themselves; only a node kind's own config check, which graph.py calls
through the kind registry, may read (the web kind checks that its endpoint and credential are
the organization's)."""
