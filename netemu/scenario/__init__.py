"""netemu.scenario: the scenario format (schema), its loader and its commands.

Importing this package loads pydantic and PyYAML only (plus netemu.tcp for
TcpConfig and State); the runner lives in ``netemu.scenario.runner``.
"""

from .loader import (
    ScenarioError,
    load_scenario,
    load_scenario_text,
    validate_file,
    validate_text,
)
from .schema import STEP_TYPES, Scenario, StepBase

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
