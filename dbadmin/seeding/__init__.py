"""What ``rcm_seed`` writes, and how it decides it.

- ``vocabulary``: the words of the trade it draws from (portals and their plans, organization
  names, CPT and ICD-10 codes, CARC/RARC, failures as portals word them, portal pages).
- ``shapes``: the three workflows (eligibility and benefits, claim status, prior
  authorization) as graphs for the authoring services, and how one row travels through each.
- ``rows``: a finished batch job's rows, with their times and traces, from a shape.
- ``profiles``: which organizations, portals, workflows and jobs each profile plans.
- ``writer``: the plan written through the services.

Everything random comes from ``random.Random`` (and Faker) seeded from ``--seed`` and the
organization's place in the plan, so one seed gives the same data on every database: names,
values and counts. Absolute times are the exception: the history ends shortly before the run,
so that the console's "today" and 7-day charts show it.
"""
