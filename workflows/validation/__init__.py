"""Checks and readers of what people send: a workflow graph (graph.py), an input row against a
task's effective fields (rows.py, with the field shape in fields.py), and an uploaded file read
into rows (files.py). Pure: they read and write nothing in the database, so that selectors and
services alike can check with them."""
