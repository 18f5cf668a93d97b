"""The scenario format: a corpus of malformed files with their exact errors, valid
examples that load, the units, the JSON Schema and the validate/schema commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic import ValidationError, create_model

from netemu.cli.files import validate_main
from netemu.scenario import ScenarioError, load_scenario, units, validate_file, validate_text
from netemu.scenario import options as scenario_options
from netemu.scenario import schema as sc
from netemu.scenario.commands import json_schema, schema_main
from netemu.tcp import State, TcpConfig

HERE = Path(__file__).parent
MALFORMED = sorted((HERE / "malformed").glob("*.yaml"))
VALID = sorted((HERE / "valid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.*)$", re.M)
NOISE = (
    "pydantic",
    "For further information",
    "Input should",
    "errors.pydantic.dev",
    "type=",
    "[type",
    "validation error",
)


def expectations(path: Path) -> list[tuple[int, int, str]]:
    return [(int(a), int(b), m) for a, b, m in EXPECT.findall(path.read_text())]


# --- malformed corpus ------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 30
    assert all(expectations(p) for p in MALFORMED), "every file states its expected errors"


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed(path: Path) -> None:
    expected = expectations(path)
    errors = validate_file(path)
    got = [f"{e.line}:{e.col}: {e.message}" for e in errors]
    assert len(errors) == len(expected), got
    for line, col, message in expected:
        assert any(e.line == line and e.col == col and message in e.message for e in errors), (
            f"expected {line}:{col}: {message!r}, got {got}"
        )
    for e in errors:
        text = str(e)
        assert text == f"{path}:{e.line}:{e.col}: {e.message}"
        assert "\n" not in text
        assert not any(n in e.message for n in NOISE), text


def test_load_scenario_raises_the_first_error_with_all_of_them() -> None:
    path = HERE / "malformed" / "bad_option_type.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert (err.file, err.line, err.col) == (str(path), 6, 10)
    assert [e.line for e in err.errors] == [6, 7]
    assert str(err).startswith(f"{path}:6:10: nagle: expected true or false")


def test_unreadable_file() -> None:
    errors = validate_file(HERE / "no-such-file.yaml")
    assert len(errors) == 1 and errors[0].line == 0
    assert str(errors[0]).endswith("no-such-file.yaml: cannot read: No such file or directory")


def _tree(*dirs: Path) -> set[str]:
    return {os.path.join(root, f) for d in dirs for root, _, files in os.walk(d) for f in files}


def test_validate_main_malformed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path, HERE)
    assert validate_main([str(p) for p in MALFORMED]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == sum(len(expectations(p)) for p in MALFORMED)
    assert all(re.match(r"^\S+\.yaml:\d+:\d+: \S", line) for line in lines), lines
    assert _tree(tmp_path, HERE) == before, "validate creates no files"


def test_validate_main_each_malformed_file_alone(capsys: pytest.CaptureFixture[str]) -> None:
    for path in MALFORMED:
        assert validate_main([str(path)]) == 2, path
    capsys.readouterr()


def test_validate_main_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_main([str(p) for p in VALID]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [f"{p}: ok" for p in VALID]


def test_validate_main_mixed_and_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_main([str(VALID[0]), str(MALFORMED[0])]) == 2
    assert validate_main([]) == 2
    capsys.readouterr()


# --- valid scenarios ----------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_loads(path: Path) -> None:
    s = load_scenario(path)
    assert s.name == path.stem
    assert s.peers
    for st in s.steps:
        assert st.line > 0 and st.col > 0
        assert isinstance(st, sc.STEP_TYPES[st.action])
        if hasattr(st, "within"):
            assert isinstance(st.within, float)
        if hasattr(st, "relative"):
            assert isinstance(st.relative, bool)
    json.dumps(s.model_dump(mode="json"))  # serialisable for report.json


def test_close_wait_resolved() -> None:
    s = load_scenario(HERE / "valid" / "close_wait.yaml")
    assert list(s.peers) == ["peer"] and s.peers["peer"].kind == "kernel"
    steps = s.steps
    assert isinstance(steps[0], sc.PeerStep) and steps[0].command == "listen"
    assert steps[0].listen is not None and steps[0].listen.port == 8080
    assert isinstance(steps[1], sc.Connect) and (steps[1].conn, steps[1].port) == ("c", 8080)
    assert (steps[1].line, steps[1].col) == (10, 5)
    assert steps[1].timeout == 3.0 and steps[1].peer == "peer"
    seg = steps[5]
    assert isinstance(seg, sc.ExpectSegment) and seg.dir == "in"
    assert seg.flags is not None and seg.flags.matches(units.FIN | units.ACK)
    assert not seg.flags.matches(units.FIN | units.ACK | units.PSH)
    assert seg.seq == units.IntMatch("==", 1) and seg.win is None and seg.within == 3.0
    assert steps[6].within == 0.5
    assert isinstance(steps[7], sc.ExpectState) and steps[7].state is State.CLOSE_WAIT
    assert isinstance(steps[8], sc.ExpectPeerState) and steps[8].state is State.FIN_WAIT_2
    assert isinstance(steps[9], sc.Sleep) and steps[9].duration == pytest.approx(0.2)
    assert isinstance(steps[10], sc.Close) and steps[10].conn == "c"
    assert s.config_for("c").msl == 1.0


def test_lossy_two_peers_resolved() -> None:
    s = load_scenario(HERE / "valid" / "lossy_two_peers.yaml")
    server, echo, other = s.peers["server"], s.peers["echo"], s.peers["other"]
    assert server.sysctls == {
        "net.ipv4.tcp_timestamps": "1",
        "net.ipv4.tcp_sack": "0",
        "net.ipv4.tcp_rmem": "4096 131072 6291456",
    }
    assert server.congestion_control == "reno" and server.port is None
    assert echo.port == 8081 and other.command == ["sh", "-c", "sleep 100"]
    out, inn = s.network.direction("out"), s.network.direction("in")
    assert (out.loss, out.delay, out.jitter, out.rate) == (0.01, 0.02, 0.002, 10_000_000)
    assert (inn.loss, inn.delay, inn.reorder, inn.rate) == (0.005, 0.02, 0.05, None)
    assert inn.corrupt == pytest.approx(0.001) and s.network.seed == 7
    connect_up, connect_e = s.steps[2], s.steps[6]
    assert isinstance(connect_up, sc.Connect) and (connect_up.port, connect_up.peer) == (
        9000,
        "server",
    )
    assert isinstance(connect_e, sc.Connect) and (connect_e.port, connect_e.peer) == (8081, "echo")
    accept = s.steps[5]
    assert isinstance(accept, sc.Accept) and accept.port == 7777 and accept.timeout == 5.0
    cfg = s.config_for("e", connect_e.options)
    assert (cfg.mss, cfg.nagle, cfg.rcv_buf, cfg.window_scale, cfg.rto_min) == (
        536,
        True,
        65536,
        None,
        0.2,
    )
    assert s.config_for("up").mss == 1024 and s.config_for("up").nagle is False
    drop = s.steps[7]
    assert isinstance(drop, sc.Drop) and drop.count == 2 and drop.conn == "up"
    assert drop.match.flags == units.FlagsMatch(units.PSH, exact=False)
    assert (
        drop.match.len is not None and drop.match.len.matches(1) and not drop.match.len.matches(0)
    )
    send = s.steps[8]
    assert isinstance(send, sc.Send) and send.payload() == units.pattern_bytes(100000)
    assert s.steps[0].conn is None  # no default connection 'c' here
    linger = s.steps[21]
    assert isinstance(linger, sc.PeerStep) and linger.setsockopt == {"SO_LINGER": [1, 0]}


def test_raw_handshake_resolved() -> None:
    s = load_scenario(HERE / "valid" / "raw_handshake.yaml")
    assert s.connections["r"].raw and s.default_conn() == "r"
    syn = s.steps[1]
    assert isinstance(syn, sc.Inject) and syn.conn == "r" and syn.dir == "out"
    assert syn.flags == units.SYN and syn.relative is True
    assert [(o.kind, o.value) for o in syn.options] == [
        ("mss", 1000),
        ("sackok", None),
        ("ts", (100, 0)),
        ("nop", None),
        ("wscale", 7),
    ]
    synack = s.steps[2]
    assert isinstance(synack, sc.ExpectSegment) and synack.options is not None
    assert synack.flags == units.FlagsMatch(units.SYN | units.ACK)
    assert synack.options.sack is False and synack.options.sackok is True
    assert synack.options.ts == (None, units.IntMatch("==", 100))
    assert synack.win == units.IntMatch(">", 0) and synack.within == 1.0
    data = s.steps[5]
    assert isinstance(data, sc.Inject) and data.payload() == b"GET / HTTP/1.0\r\n\r\n"
    hexseg = s.steps[10]
    assert isinstance(hexseg, sc.ExpectSegment) and hexseg.hex == "48545450"
    quiet = s.steps[-1]
    assert isinstance(quiet, sc.ExpectNoSegment) and quiet.for_ == 0.3 and quiet.dir == "in"


def test_model_validate_without_the_loader() -> None:
    data = {"name": "x", "peer": "kernel", "steps": ["close", {"connect": 80}]}
    with pytest.raises(ValidationError) as info:
        sc.Scenario.model_validate(data)
    assert "connection 'c' is used before connect or accept opens it" in str(info.value)
    ok = sc.Scenario.model_validate(
        {"name": "x", "peer": "kernel", "steps": [{"connect": 80}, "close"]}
    )
    assert [st.action for st in ok.steps] == ["connect", "close"] and ok.steps[0].line == 0


def test_validate_text_reports_several_errors_in_file_order() -> None:
    text = "name: x\npeer: kernel\nsteps:\n  - sleep: 1 parsec\n  - conect: 1\n  - close: 5\n"
    got = [str(e) for e in validate_text(text, "t.yaml")]
    assert got[0].startswith("t.yaml:4:12: bad duration '1 parsec'")
    assert got[1] == "t.yaml:5:5: unknown step 'conect' (did you mean 'connect'?)"
    assert got[2] == "t.yaml:6:12: expected a name, got 5"  # short form: no field name


# --- units ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("200ms", 0.2),
        ("2s", 2.0),
        (" 1.5 s ", 1.5),
        ("1m", 60.0),
        ("500us", 5e-4),
        (3, 3.0),
        (0.25, 0.25),
        ("10", 10.0),
        ("1e3ms", 1.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert units.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["20 parsecs", "-1s", "ms", True, None, [1], "1 2s", "nan"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(units.UnitError):
        units.parse_duration(text)


def test_percent_rate_size_hex() -> None:
    assert units.parse_percent("5%") == 0.05 and units.parse_percent(0.5) == 0.5
    assert units.parse_percent("0.1 %") == pytest.approx(0.001)
    for bad in ("5", "101%", 5, -0.1, "five%"):
        with pytest.raises(units.UnitError):
            units.parse_percent(bad)
    assert units.parse_rate("10mbit") == 10**7 and units.parse_rate("1.5Gbit") == 15 * 10**8
    assert units.parse_rate("512kbit/s") == 512000 and units.parse_rate(1000) == 1000
    for bad in ("10mbps", "10MB", "fast", 0):
        with pytest.raises(units.UnitError):
            units.parse_rate(bad)
    assert units.parse_size("64k") == 65536 and units.parse_size("1MiB") == 1 << 20
    assert units.parse_size(100) == 100 and units.parse_size("1.5k") == 1536
    for bad in ("-1", -1, "1 bytes", True, "1.3"):
        with pytest.raises(units.UnitError):
            units.parse_size(bad)
    assert units.parse_hex("DE:AD be ef") == "deadbeef" and units.parse_hex("0x00") == "00"
    for bad in ("zz", "abc", 12):
        with pytest.raises(units.UnitError):
            units.parse_hex(bad)
    assert units.pattern_bytes(258) == bytes(range(256)) + b"\x00\x01"


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("S", units.SYN),
        ("S.", units.SYN | units.ACK),
        ("SYN+ACK", units.SYN | units.ACK),
        ("fin|ack", units.FIN | units.ACK),
        ("F, ACK", units.FIN | units.ACK),
        ("FP.", units.FIN | units.PSH | units.ACK),
        ("R", units.RST),
        ("none", 0),
        ("", 0),
        ("SEW", units.SYN | units.ECE | units.CWR),
        ("U.", units.URG | units.ACK),
    ],
)
def test_flags(text: str, mask: int) -> None:
    assert units.parse_flags(text) == mask
    assert units.parse_flags(units.flags_text(mask)) == mask


def test_flag_patterns() -> None:
    assert units.parse_flags_match("*") is None
    at_least = units.parse_flags_match("+F")
    assert at_least is not None and str(at_least) == "+F"
    assert at_least.matches(units.FIN | units.ACK) and not at_least.matches(units.ACK)
    with pytest.raises(units.UnitError, match="unknown TCP flag letter 'X'"):
        units.parse_flags("SX")
    with pytest.raises(units.UnitError, match="did you mean 'ACK'"):
        units.parse_flags("SYN+AKC")
    with pytest.raises(units.UnitError, match="exact flags"):
        units.parse_flags("*")


@pytest.mark.parametrize(
    ("text", "yes", "no"),
    [
        (17, [17], [16, 18]),
        ("17", [17], [1]),
        (">0", [1, 9], [0]),
        ("<=5", [5, 0], [6]),
        ("!=0", [1], [0]),
        ("10..20", [10, 15, 20], [9, 21]),
        ("-1", [-1], [1]),
        ("= 3", [3], [4]),
    ],
)
def test_int_patterns(text: object, yes: list[int], no: list[int]) -> None:
    m = units.parse_int_match(text)
    assert m is not None
    assert all(m.matches(v) for v in yes) and not any(m.matches(v) for v in no)
    assert units.parse_int_match(str(m)) == m


def test_states() -> None:
    assert units.normalise_state("fin_wait_2") == "FIN-WAIT-2"
    assert units.normalise_state("Syn Received") == "SYN-RECEIVED"
    assert units.normalise_state("syn-rcvd") == "SYN-RECEIVED"
    assert set(units.state_names()) == {s.value for s in State}
    with pytest.raises(units.UnitError, match="did you mean 'ESTABLISHED'"):
        units.normalise_state("ESTABLISH")


# --- options follow TcpConfig, schema, imports ----------------------------------------


def test_options_are_tcpconfig_fields() -> None:
    names = [f.name for f in fields(TcpConfig)]
    assert list(scenario_options.Options.model_fields) == names
    opts = scenario_options.Options.model_validate(
        {"rto_min": "150ms", "snd_buf": "1M", "nagle": False}
    )
    cfg = scenario_options.options_to_config(opts)
    assert (cfg.rto_min, cfg.snd_buf, cfg.nagle, cfg.mss) == (0.15, 1 << 20, False, 1460)


def test_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json_schema()
    assert schema["title"] == "netemu scenario"
    items = schema["properties"]["steps"]["items"]["oneOf"]
    actions = [next(iter(i["properties"])) for i in items if "properties" in i]
    assert actions == list(sc.STEP_TYPES)
    bare = next(i for i in items if "enum" in i)["enum"]
    assert set(bare) == {"accept", "shutdown", "close", "abort"}
    assert set(schema["$defs"]["Options"]["properties"]) == {f.name for f in fields(TcpConfig)}
    assert schema["$defs"]["Options"]["properties"]["rto_min"]["description"] == (
        "Linux TCP_RTO_MIN: the RTO is at least SRTT + rto_min, as in Linux"
    )
    assert schema["$defs"]["Connect"]["additionalProperties"] is False
    assert schema_main() == 0
    assert json.loads(capsys.readouterr().out) == schema


def test_loader_imports_no_scapy_nor_lab() -> None:
    code = (
        "import sys, netemu.scenario.loader, netemu.scenario.commands; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'pyroute2', "
        "'anyio', 'rich')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# What `netemu run` imports besides the runner of its kind (netemu/cli/run.py).
_RUN_MODULES = (
    "netemu.cli",
    "netemu.cli.run",
    "netemu.run.rundir",
    "netemu.host",
    "netemu.lab.core",
    "netemu.trace.record",
    "netemu.trace.pcap",
    "netemu.trace.ladder",
    "netemu.trace.report",
)


def _imported(*modules: str) -> set[str]:
    code = (
        f"import sys, {', '.join(modules)}; "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('pydantic', "
        "'pydantic_core', 'yaml', 'scapy', 'pyroute2', 'rich') "
        "or m.startswith('netemu.scenario.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_run_path_imports_no_scapy_and_pkt_runs_no_yaml() -> None:
    """`netemu run`'s modules (its fixed cost: netemu bench run) leave scapy, pyroute2 and
    rich out; a YAML run needs PyYAML, the loader and pydantic (the schema), a packetdrill
    run (netemu.pkt) none of them."""
    yaml_run = _imported(*_RUN_MODULES, "netemu.scenario.loader", "netemu.scenario.session")
    assert {"yaml", "pydantic", "netemu.scenario.loader", "netemu.scenario.schema"} <= yaml_run
    assert not {m for m in yaml_run if m.split(".")[0] in ("scapy", "pyroute2", "rich")}
    pkt_run = _imported(*_RUN_MODULES, "netemu.pkt", "netemu.pkt.session", "netemu.pkt.runner")
    assert pkt_run == set()


def test_future_option_types_validate_cleanly() -> None:
    """Knobs still to come in TcpConfig (unions, literals, enums) get one clear message."""
    import enum
    from typing import Literal

    class Cc(enum.Enum):
        RENO = "reno"
        CUBIC = "cubic"

    model = create_model(
        "Future",
        __base__=scenario_options.Strict,
        delayed_ack=(scenario_options._option_type("delayed_ack", bool | float, {}), 0.04),
        algo=(scenario_options._option_type("algo", Literal["reno", "cubic"], {}), "reno"),
        cc=(scenario_options._option_type("cc", Cc, {}), Cc.RENO),
        keepalive_time=(scenario_options._option_type("keepalive_time", float | None, {}), None),
        timestamps=(scenario_options._option_type("timestamps", bool, {}), True),
        mss=(scenario_options._option_type("mss", int, {}), 1460),
    )
    ok = model.model_validate(
        {
            "delayed_ack": "40ms",
            "algo": "cubic",
            "cc": "cubic",
            "keepalive_time": "2m",
            "timestamps": False,
            "mss": "1k",
        }
    )
    assert (ok.delayed_ack, ok.algo, ok.cc, ok.keepalive_time, ok.mss) == (  # type: ignore[attr-defined]
        0.04,
        "cubic",
        Cc.CUBIC,
        120.0,
        1024,
    )
    assert model.model_validate({"delayed_ack": False}).delayed_ack is False  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as info:
        model.model_validate({"delayed_ack": "soon"})
    errors = info.value.errors()
    assert len(errors) == 1 and errors[0]["loc"] == ("delayed_ack",)
    assert errors[0]["msg"].startswith("expected true or false / bad duration 'soon'")
