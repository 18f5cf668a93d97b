"""What a scenario asks of its run apart from its steps, for both of its modes
(session.py: endpoint, relay_runner.py: relay): the labs' sysctls and congestion
control, the impairment pipelines and their seed, and what report.json says of a run
a signal interrupted. Layer: netemu.scenario, on netemu.run."""

from __future__ import annotations

from typing import Any, Protocol

from ..run.impair import IMPAIR_FIELDS, Pipelines, given, pipelines
from ..run.result import StepResult
from ..run.rundir import Account
from . import schema as S


class HasResults(Protocol):
    results: list[StepResult]


def peer_sysctls(sc: S.Scenario) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for peer in sc.peers.values():
        out.update(peer.sysctls)
    return out


def congestion(sc: S.Scenario) -> str | None:
    algos = {p.congestion_control for p in sc.peers.values() if p.congestion_control}
    return next(iter(algos)) if algos else None


def lab_args(sc: S.Scenario, role: str) -> dict[str, Any]:
    """A relay lab's arguments: the sysctls and congestion control of its peer."""
    peer = sc.peers.get(role)
    return {
        "peer_sysctls": dict(peer.sysctls) if peer else {},
        "congestion": peer.congestion_control if peer else None,
    }


def link_notes(sc: S.Scenario) -> list[str]:
    """The ladder's note on a lab link ``netemu run --ipv6`` widened (Scenario.as_ipv6),
    or none."""
    mtu = sc._link_mtu
    if mtu == 1500:
        return []
    return [
        f"over IPv6 (--ipv6) on a {mtu}-byte link: both ends' MSS is {mtu - 60}, "
        "as on IPv4's 1500-byte one"
    ]


def network_seed(sc: S.Scenario) -> int:
    """The seed of the scenario's impairment pipelines: network.seed, else the
    scenario's, else 0."""
    return sc.network.seed if sc.network.seed is not None else (sc.seed or 0)


def impairments(sc: S.Scenario, overrides: dict[str, Any] | None = None) -> Pipelines:
    """(out, in) pipelines from the scenario's `network:` block, with command-line
    overrides applied to both directions; None where a direction is unimpaired."""
    out, in_ = (
        {k: getattr(sc.network.direction(d), k) for k in IMPAIR_FIELDS} for d in ("out", "in")
    )
    return pipelines(given(out, overrides), given(in_, overrides), network_seed(sc))


def interrupted_account(
    sc: S.Scenario, runner: HasResults | None, extra: dict[str, Any]
) -> Account:
    """What report.json says of an interrupted scenario: its steps so far (the one the
    signal came during: "interrupted"; those not reached: "skipped")."""

    def account() -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
        results = list(runner.results) if runner is not None else []
        steps = [r.as_dict() for r in results]
        for st in steps:
            if st.get("status") == "pending":  # the step the signal came during
                st["status"] = "interrupted"
        done = {r.index for r in results}
        steps += [
            {"index": i, "line": st.line, "action": st.ACTION, "status": "skipped"}
            for i, st in enumerate(sc.steps, 1)
            if i not in done
        ]
        where = f" during step {results[-1].index}" if results else ""
        return steps, where, {"description": sc.description, "seed": sc.seed, **extra}

    return account
