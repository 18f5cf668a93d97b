"""netemu.run: the run layer every kind of run uses (a YAML scenario on netemu's
endpoint, a relay scenario, a packetdrill ``.pkt`` script, and what comes next).

- ``result``: what a run and its steps come to (``Outcome``, ``StepResult``,
  ``StepFailed``, ``EnvironmentProblem``);
- ``steps``: the step loop (``StepLoop``): one step after another, each timed,
  its failure noted on the trace, the rest skipped;
- ``rundir``: the run directory (trace.pcap, ladder.txt, ladder.html,
  report.json), written the same way for every kind of run, and for one that a
  signal interrupted;
- ``peerview``: the one source of the peer kernels' socket states (tracepoints,
  sock_diag polls, or inferred from the packets);
- ``hooks``: a script's hooks on the host or relay it runs on (``Hooks``: its raw
  ports and drop rules, which ``host.script`` consults);
- ``impair``: the impairment pipelines a run's values (a scenario's network:
  block, the command line's overrides) make;
- ``relay``: relay mode's two labs and the relay between them, for relay
  scenarios and ``netemu relay`` (held open for programs of the user's own).

Layer rule: ``netemu.run`` imports netemu's lower layers (host, lab, trace,
impair, wire) and never ``netemu.scenario``, ``netemu.pkt`` or ``netemu.cli``:
those two formats build on it, and ``netemu.cli`` dispatches between them.
"""
