"""Hostile scenario files get one line `file:line:col: message` and exit 2, never a
traceback nor a run that would trip on them later (issue 17, items 4 and 5)."""

from __future__ import annotations

import time

import pytest

from netemu.scenario.loader import validate_text

HEAD = "name: h\npeer: kernel\n"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("name: a\x00b\npeer: kernel\nsteps:\n  - sleep: 1ms\n", "1:8", "control character"),
        # a 33-digit seed validated, then the run failed making its ISN secret
        (HEAD + "seed: " + "9" * 33 + "\nsteps:\n  - sleep: 1ms\n", "3:7", "out of range"),
        (
            HEAD + "steps:\n  - sleep: " + "[" * 400 + "]" * 400 + "\n",
            "4:112",
            "nesting deeper than 100",
        ),
        (HEAD + "network: {rate: .inf}\nsteps:\n  - sleep: 1ms\n", "3:17", "a rate of at most"),
        (
            HEAD + "network: {rate: 1e400mbit}\nsteps:\n  - sleep: 1ms\n",
            "3:17",
            "a rate of at most",
        ),
        (
            HEAD + "steps:\n  - connect: 8080\n  - send: {bytes: " + "9" * 400 + "}\n",
            "5:19",
            "a byte count of at most",
        ),
        (HEAD + "steps:\n  - sleep: 1e300s\n", "4:12", "a duration of at most 86400 s"),
        (
            HEAD + "options: {mss: 70000}\nsteps:\n  - sleep: 1ms\n",
            "3:16",
            "mss must be from 1 to 65495",
        ),
        (
            HEAD + "options: {window_scale: 300}\nsteps:\n  - sleep: 1ms\n",
            "3:25",
            "window_scale must be from 0 to 14",
        ),
    ],
)
def test_hostile_input_is_refused_at_its_place(text: str, where: str, message: str):
    t0 = time.monotonic()
    errors = validate_text(text, "h.yaml")
    assert time.monotonic() - t0 < 2
    assert errors, "accepted"
    first = str(errors[0])
    assert first.startswith(f"h.yaml:{where}: ") and message in first, first


def test_a_billion_laughs_is_refused_before_it_expands():
    lines = [HEAD.strip(), "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):  # 10^10 values once expanded
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += ["steps:", "  - sleep: 1ms"]
    t0 = time.monotonic()
    errors = validate_text("\n".join(lines) + "\n", "b.yaml")
    assert time.monotonic() - t0 < 2
    assert errors and "stands for more than 50000 values" in str(errors[0]), errors


def test_a_file_too_big_is_refused_before_it_is_read():
    """3 MB of steps took 20 s and 440 MB to refuse (as an alias bomb, wrongly)."""
    text = HEAD + "steps:\n" + "  - sleep: 1ms\n" * 200_000
    t0 = time.monotonic()
    errors = validate_text(text, "big.yaml")
    assert time.monotonic() - t0 < 2
    # the line the 262,145th character is on: step k is on line 3 + k
    line = 3 + (256 * 1024 - len(HEAD) - len("steps:\n")) // len("  - sleep: 1ms\n") + 1
    assert [str(e) for e in errors] == [
        f"big.yaml:{line}:1: the file is {len(text)} characters, more than a scenario may "
        "be (262144): it goes on past here"
    ]


def test_too_many_steps_are_refused_at_the_first_one_too_many():
    text = HEAD + "steps:\n" + "  - sleep: 1ms\n" * 3000
    t0 = time.monotonic()
    errors = validate_text(text, "many.yaml")
    assert time.monotonic() - t0 < 2
    first = HEAD.count("\n") + 2  # the line of step 1
    assert [str(e) for e in errors] == [
        f"many.yaml:{first + 2000}:5: more than 2000 steps (3000): this is step 2001"
    ]


def test_invalid_utf8_is_refused_at_its_byte(tmp_path):
    from netemu.scenario.loader import validate_file

    f = tmp_path / "u.yaml"
    f.write_bytes(b'name: u\npeer: kernel\nsteps:\n  - send: "\xff"\n')
    errors = validate_file(f)
    assert [str(e) for e in errors] == [f"{f}:4:12: not UTF-8 text: byte 0xff (invalid start byte)"]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        # a YAML escape in a name drove the terminal it was printed to
        (
            'name: "n\\e[1mB"\npeer: kernel\nsteps:\n  - sleep: 1ms\n',
            "1:7",
            "name: a control character ('\\x1b') in the text",
        ),
        (
            'name: x\ndescription: "\\u009b31m"\npeer: kernel\nsteps:\n  - sleep: 1ms\n',
            "2:14",
            "description: a control character",
        ),
        # a lone surrogate validated, then the run failed writing it out
        (
            "name: x\npeer: kernel\nsteps:\n  - peer: {listen: 1}\n  - connect: 1\n"
            '  - send: "\\ud800"\n',
            "6:12",
            "lone surrogate",
        ),
        # an integer of over 4,300 digits: Python's own limit, a traceback
        (
            HEAD
            + "steps:\n  - peer: {listen: 1}\n  - connect: 1\n  - send: {bytes: "
            + "9" * 5000
            + "}\n",
            "6:19",
            "a number of 5000 digits",
        ),
    ],
)
def test_text_python_or_the_terminal_cannot_take(text: str, where: str, message: str) -> None:
    errors = validate_text(text, "t.yaml")
    assert errors and str(errors[0]).startswith(f"t.yaml:{where}: "), errors
    assert message in str(errors[0]), errors


@pytest.mark.parametrize(
    ("step", "col", "message"),
    [
        # validated, then the run failed: MemoryError, or 'Message too long' on the wire
        ("send: {bytes: 1099511627776}", 19, "a byte count of at most 1073741824 (1 GiB)"),
        (
            'inject: {flags: "P.", bytes: 2000}',
            34,
            "2000 bytes of payload do not fit one frame on the lab's wire: 1460 at most",
        ),
        ('inject: {flags: "P.", bytes: 1451, options: {ts: [1, 2]}}', 34, "1450 at most"),
    ],
)
def test_values_a_run_could_not_carry_out(step: str, col: int, message: str) -> None:
    text = HEAD + f"steps:\n  - peer: {{listen: 1}}\n  - connect: 1\n  - {step}\n"
    errors = validate_text(text, "v.yaml")
    assert errors and str(errors[0]).startswith(f"v.yaml:6:{col}: "), errors
    assert message in str(errors[0]), errors
