"""A step's label (terminal, ladder): one line, numbers as a person writes them."""

from __future__ import annotations

from netemu.scenario.conns import step_text
from netemu.scenario.loader import load_scenario_text


def test_a_label_rounds_floats_and_escapes_control_characters():
    sc = load_scenario_text(
        """\
name: labels
peer: kernel
steps:
  - connect: 8080
  - expect_segment: {dir: in, after: 0.7000000000000001, within: 1s}
  - send: "a\\nb\\u001b[31m"
""",
        "l.yaml",
    )
    texts = [step_text(s) for s in sc.steps]
    assert "after=0.7," in texts[1] or texts[1].endswith("after=0.7"), texts[1]
    assert "0.7000000000000001" not in texts[1]
    assert "\n" not in texts[2] and "\x1b" not in texts[2] and "\\n" in texts[2], texts[2]
