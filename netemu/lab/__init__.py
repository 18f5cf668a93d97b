"""netemu.lab: namespaces, veth, peers (kernel agent, Go servers, any command),
peer-state probes (sock_diag), sysctls and cleanup. The only code that creates
namespaces, links or processes.

Imports are lazy: ``from netemu.lab import Lab`` loads only what a lab needs.

Layer rule: lab imports ``netemu.link`` and the leaf ``netemu.linux``, nothing above
(no host, tcp, scenario or pkt). ``agent.py`` runs alone in the peer namespace and
imports only the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..linux import in_netns, run_in_netns
    from .core import Lab, LabError
    from .diag import DiagProbe, SockState
    from .kernel import AgentError, AgentTimeout, AsyncKernelAgent, KernelAgent
    from .netns import NsThread
    from .process import LabProcess
    from .registry import clean, list_runs

_EXPORTS = {
    "Lab": "core",
    "LabError": "core",
    "DiagProbe": "diag",
    "SockState": "diag",
    "AgentError": "kernel",
    "AgentTimeout": "kernel",
    "AsyncKernelAgent": "kernel",
    "KernelAgent": "kernel",
    "NsThread": "netns",
    "in_netns": "..linux",
    "run_in_netns": "..linux",
    "LabProcess": "process",
    "clean": "registry",
    "list_runs": "registry",
}

__all__ = [
    "AgentError",
    "AgentTimeout",
    "AsyncKernelAgent",
    "DiagProbe",
    "KernelAgent",
    "Lab",
    "LabError",
    "LabProcess",
    "NsThread",
    "SockState",
    "clean",
    "in_netns",
    "list_runs",
    "run_in_netns",
]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'netemu.lab' has no attribute {name!r}")
    return getattr(
        importlib.import_module(mod if mod.startswith(".") else f".{mod}", __name__), name
    )
