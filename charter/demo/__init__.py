"""`charter demo`: a simulated month of Acme's work through Charter's real code path.

The demo's pieces, one module each:

- `truth`: the hidden table of what each member really achieves (success probability,
  cost, minutes per task type), which the allocator never sees;
- `world`: the simulation's ground truth as it unfolds (each attempt's real result and
  cost), shared by the simulated agents and people;
- `agents`: the Python engines the example org names (`charter.demo.agents:buyer`, …);
- `workload`: the seeded stream of a month's tasks;
- `people`: the simulated people (approvals, their own queues, reviews, proposals);
- `simulation`: the month, on a `ManualClock` the simulation advances;
- `runs`: two runs of the same month (two strategies) in parallel processes;
- `results` and `report`: what happened, and the report comparing two strategies;
- `workspace`: the demo's workspace (the example org, as the demo runs it).
"""
