"""Pictures of workflows as SVG, pure (data in, markup out): the graph of a draft, a revision
or a run, and the tier mix of a workflow's web actions. The admin and the console draw with
them, which is why they are not part of the admin."""
