"""netemu.bench: the ``netemu bench`` measurements (codec, core, wire, impair, sack,
ladder, peer-io, pkt, pkt-suite, run, concurrent), each a ``run`` returning a JSON-able
dict and a ``render`` for people (pkt-suite: ``main(args)``).

Layer rule: the top, beside the CLI: it may import any of netemu's layers, and none
imports it but ``netemu.cli``.
"""
