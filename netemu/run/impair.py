"""Impairment pipelines for a run: netem's names (``IMPAIR_FIELDS``), the values each
direction is given (a scenario's ``network:`` block, the command line's overrides),
and the two ``netemu.impair.Impairment``s built from them. netemu.impair is imported
only when something is set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..impair import Impairment

# netem's names, each an ImpairConfig field; the command line's overrides use them too.
IMPAIR_FIELDS = ("loss", "delay", "jitter", "reorder", "duplicate", "corrupt", "rate")

Pipelines = tuple["Impairment | None", "Impairment | None"]


def given(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, float]:
    """One direction's values: ``base``'s, with the overrides that are set over them."""
    values = dict(base)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return {k: float(v) for k, v in values.items() if v is not None}


def pipelines(out: Mapping[str, float], in_: Mapping[str, float], seed: int) -> Pipelines:
    """(out, in) pipelines from each direction's values; None where a direction is
    unimpaired. Their seeds: ``seed * 2`` out, ``seed * 2 + 1`` in."""
    if not out and not in_:
        return None, None  # nothing set: no pipelines, and netemu.impair left unimported

    from ..impair import ImpairConfig, Impairment

    made = []
    for i, values in enumerate((out, in_)):
        cfg = ImpairConfig(
            loss=values.get("loss", 0.0),
            delay=values.get("delay", 0.0),
            jitter=values.get("jitter", 0.0),
            reorder=values.get("reorder", 0.0),
            duplicate=values.get("duplicate", 0.0),
            corrupt=values.get("corrupt", 0.0),
            rate=values.get("rate", 0.0),
            limit=100_000,
        )
        made.append(Impairment(cfg, seed=seed * 2 + i) if cfg.active else None)
    return made[0], made[1]
