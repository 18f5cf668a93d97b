"""netemu.scenario: the YAML scenario format (schema), its loader and its step actions.

Layer rule: scenario stands on the run layer (``netemu.run``) and below; it never imports
``netemu.pkt`` (the other script format) nor ``netemu.cli`` (which dispatches by file type).
The names below are imported on first use (PEP 562), so that importing a submodule
(``netemu.scenario.session`` to run a scenario, say) does not load PyYAML and the
loader. ``netemu.scenario.loader`` loads PyYAML and pydantic (plus netemu.tcp for
TcpConfig and State); the runner lives in ``netemu.scenario.runner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loader import (
        ScenarioError,
        load_scenario,
        load_scenario_text,
        validate_file,
        validate_text,
    )
    from .schema import STEP_TYPES, Scenario, StepBase

_WHERE = {
    "ScenarioError": "loader",
    "load_scenario": "loader",
    "load_scenario_text": "loader",
    "validate_file": "loader",
    "validate_text": "loader",
    "STEP_TYPES": "schema",
    "Scenario": "schema",
    "StepBase": "schema",
}

__all__ = [
    "STEP_TYPES",
    "Scenario",
    "ScenarioError",
    "StepBase",
    "load_scenario",
    "load_scenario_text",
    "validate_file",
    "validate_text",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value
    return value
