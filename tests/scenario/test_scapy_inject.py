"""``inject: {scapy: "<expression>"}`` (issue 18): a packet built in scapy's language.

At load: the expression must be Python's expression syntax (file:line:col at the
string), and it goes with none of the segment's fields; ``netemu validate`` and ``netemu
run`` name it as trusted code netemu runs in its own process, and neither imports
scapy for it. At run time (root): it crafts what it says on the lab's wire, marked
injected, or hands a TCP segment to netemu's endpoint; an expression that fails, or
builds what the lab cannot carry, fails its step with a one-line reason."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netemu.cli.files import run_notices
from netemu.scenario.loader import load_scenario_text, validate_text

# as tests/conftest.py has it (a conftest is not importable as a package module here)
ROOT = Path(__file__).resolve().parents[2]
OWN = "as root in netemu's own process (trusted code)"
HEAD = """\
name: scapy
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
"""
RST_OUT = "IP(dst=peer_ip)/TCP(sport=emu_port, dport=peer_port, flags='R', seq=seq, window=4321)"


def scenario(*steps: str) -> str:
    return HEAD + "".join(f"  - {s}\n" for s in steps)


# --- at load -----------------------------------------------------------------------


def test_a_syntax_error_is_a_file_line_col_error_at_the_string() -> None:
    errors = validate_text(scenario("inject: {scapy: \"IP(dst=peer_ip)/TCP(flags='R'\"}"), "t.yaml")
    assert [str(e) for e in errors] == [
        "t.yaml:7:21: scapy: not a Python expression: '(' was never closed "
        "(at column 20 of the expression)"
    ]


def test_a_syntax_error_on_a_later_line_of_a_block_string() -> None:
    text = scenario(
        "inject:\n      dir: out\n      scapy: |\n        (IP()\n          / TCP(flags=))"
    )
    errors = validate_text(text, "t.yaml")
    assert [str(e) for e in errors] == [
        "t.yaml:9:14: scapy: not a Python expression: invalid syntax "
        "(at line 2, column 15 of the expression)"
    ], errors


def test_an_expression_that_stops_short_is_placed_at_its_end() -> None:
    # Python gives no column for it (offset 0): "column 1" pointed at the wrong place
    errors = validate_text(scenario('inject: {scapy: "IP()/TCP() +"}'), "t.yaml")
    assert [str(e) for e in errors] == [
        "t.yaml:7:21: scapy: not a Python expression: invalid syntax (at the end of the expression)"
    ]


def test_a_statement_is_not_an_expression() -> None:
    errors = validate_text(scenario('inject: {scapy: "p = IP()"}'), "t.yaml")
    assert len(errors) == 1 and str(errors[0]).startswith(
        "t.yaml:7:21: scapy: not a Python expression: "
    ), errors


@pytest.mark.parametrize(
    "field",
    [
        "flags: R",
        "seq: 1",
        "ack: 1",
        "win: 10",
        "urg: 1",
        "options: [nop]",
        "data: hi",
        "hex: '00'",
        "bytes: 3",
        "bad_checksum: true",
        "relative: false",
    ],
)
def test_scapy_goes_with_no_segment_field(field: str) -> None:
    name = field.split(":")[0]
    line = f'inject: {{scapy: "IP()/TCP()", {field}}}'
    errors = validate_text(scenario(line), "t.yaml")
    col = 5 + line.index(name)  # at the field's key, in the step's mapping
    assert [str(e) for e in errors] == [
        f"t.yaml:7:{col}: give either 'scapy' or the segment's fields: 'scapy' builds the "
        f"whole packet, '{name}' cannot go with it"
    ]


def test_without_scapy_flags_stays_required() -> None:
    assert [str(e) for e in validate_text(scenario("inject: {dir: in}"), "t.yaml")] == [
        "t.yaml:7:13: missing 'flags' in inject"
    ]
    assert validate_text(scenario("inject: {dir: in, flags: R}"), "t.yaml") == []
    sc = load_scenario_text(scenario('inject: {dir: in, scapy: "IP()/TCP()", conn: c}'))
    assert sc.steps[-1].scapy == "IP()/TCP()"  # type: ignore[attr-defined]


def test_not_a_string_is_an_error() -> None:
    errors = validate_text(scenario("inject: {scapy: 3}"), "t.yaml")
    assert len(errors) == 1 and str(errors[0]).startswith(
        "t.yaml:7:21: scapy: expected a scapy expression such as"
    ), errors


def netemu(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netemu", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_validate_names_the_expressions_as_trusted_code(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(scenario(f'inject: {{scapy: "{RST_OUT}"}}'))
    (tmp_path / "both.yaml").write_text("""\
name: both
peers:
  k: kernel
  p: {kind: command, command: [sleep, "5"]}
steps:
  - peer: {peer: k, listen: 8080}
  - connect: {peer: k, port: 8080}
  - inject: {scapy: "IP()/TCP(flags='R', seq=seq)"}
  - inject: {dir: in, scapy: "IP()/TCP(flags='R', seq=seq)"}
""")
    (tmp_path / "plain.yaml").write_text(scenario("inject: {flags: R}"))
    out = netemu("validate", "one.yaml", "both.yaml", "plain.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["one.yaml: ok", "both.yaml: ok", "plain.yaml: ok"]
    assert out.stderr.splitlines() == [
        f"notice: one.yaml runs 1 Python snippet {OWN}",
        "notice: both.yaml runs 1 command peer (sleep) as root in the lab's peer namespace "
        f"and 2 Python snippets {OWN}",
    ]
    assert run_notices([tmp_path]) == [
        f"notice: {tmp_path}: 2 of 3 files run 1 command peer (sleep) as root in the lab's "
        f"peer namespace and 3 Python snippets {OWN}"
    ]


def test_validation_does_not_import_scapy(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(scenario(f'inject: {{scapy: "{RST_OUT}"}}'))
    code = (
        "import sys; from netemu.cli.files import validate_main, run_notices; "
        "assert validate_main(['s.yaml'], notices=True) == 0; "
        "assert run_notices(['s.yaml']); print('scapy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "False", out.stdout


# --- at run time (root, against the kernel peer) -----------------------------------------


def run(text: str, tmp_path: Path):
    from netemu.scenario.session import run_scenario

    sc = load_scenario_text(text, str(tmp_path / "s.yaml"))
    return asyncio.run(run_scenario(sc, tmp_path / "run"))


def tshark_fields(tshark: str, pcap: Path, where: str, *fields: str) -> list[list[str]]:
    args = [tshark, "-r", str(pcap), "-Y", where, "-T", "fields", "-o", "tcp.check_checksum:TRUE"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


@pytest.mark.root
@pytest.mark.timeout(60)
def test_an_in_window_rst_from_netemus_side_closes_the_kernels_socket(
    tmp_path: Path, tshark: str
) -> None:
    # seq is netemu's SND.NXT: the kernel takes the RST (RFC 5961 3.2: exactly
    # RCV.NXT) and its ESTABLISHED socket goes to CLOSED. netemu's own endpoint knows
    # nothing of it: the expression's window (4321) is none of netemu's.
    out = run(
        scenario(
            "send: hi",
            "peer: {expect: hi}",
            f'inject: {{scapy: "{RST_OUT}"}}',
            "expect_peer_state: {state: CLOSED, within: 1s}",
            "expect_state: ESTABLISHED",
        ),
        tmp_path,
    )
    assert out.passed, out.report["error"]
    rst = [s for s in out.report["segments"] if s["flags"] == "RST"]
    assert [(s["direction"], s["mark"], s["seq"]) for s in rst] == [("out", "injected", 3)], rst
    ours = tshark_fields(
        tshark,
        tmp_path / "run" / "trace.pcap",
        "tcp.flags.syn == 1 && tcp.flags.ack == 0",
        "tcp.srcport",
        "tcp.seq_raw",
    )
    [(port, isn)] = ours
    got = tshark_fields(
        tshark,
        tmp_path / "run" / "trace.pcap",
        "tcp.flags.reset == 1",
        "ip.src",
        "ip.dst",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.flags",
        "tcp.seq_raw",
        "tcp.window_size_value",
        "tcp.checksum.status",
    )
    assert got == [
        [
            "198.18.0.1",
            "198.18.0.2",
            port,
            "8080",
            "0x0004",
            str((int(isn) + 3) % 2**32),
            "4321",
            "1",
        ]
    ], got  # SYN + "hi"


@pytest.mark.root
@pytest.mark.timeout(60)
def test_dir_in_hands_the_segment_to_netemus_endpoint(tmp_path: Path) -> None:
    out = run(
        scenario(
            "inject: {dir: in, scapy: \"IP()/TCP(sport=peer_port, dport=emu_port, flags='R', "
            'seq=seq)"}',
            "expect_event: {event: reset, within: 100ms}",
            "expect_state: CLOSED",
        ),
        tmp_path,
    )
    assert out.passed, out.report["error"]
    rst = [s for s in out.report["segments"] if s["flags"] == "RST"]
    assert [(s["direction"], s["mark"], s["seq"]) for s in rst] == [("in", "injected", 1)], rst


@pytest.mark.root
@pytest.mark.timeout(60)
def test_an_icmp_error_quoting_the_connection_goes_out_as_built(
    tmp_path: Path, tshark: str
) -> None:
    expr = (
        "IP()/ICMP(type=3, code=4, nexthopmtu=1280)/IP(src=emu_ip, dst=peer_ip)/"
        "TCP(sport=emu_port, dport=peer_port, seq=seq)"
    )
    out = run(scenario(f'inject: {{scapy: "{expr}"}}'), tmp_path)
    assert out.passed, out.report["error"]
    got = tshark_fields(
        tshark,
        tmp_path / "run" / "trace.pcap",
        "icmp",
        "ip.src",
        "icmp.type",
        "icmp.code",
        "icmp.mtu",
        "tcp.dstport",
    )
    assert got == [["198.18.0.1,198.18.0.1", "3", "4", "1280", "8080"]], got


@pytest.mark.root
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        (
            "IP(dst=peer_ip)/TCPP(flags='R')",
            "the scapy expression failed: NameError: name 'TCPP' is not defined",
        ),
        (
            "1 // 0",
            "the scapy expression failed: ZeroDivisionError: integer division or modulo by zero",
        ),
        ("'IP()'", "the scapy expression built str 'IP()', not a scapy packet"),
        ("Ether()/ARP()", "no IPv4 layer"),
        (
            "IP()/UDP()/Raw(b'x' * 1473)",
            "the scapy packet is 1501 bytes, more than the lab's MTU (1500)",
        ),
    ],
)
def test_a_failing_expression_fails_its_step_with_the_reason(
    tmp_path: Path, expr: str, reason: str
) -> None:
    out = run(scenario(f'inject: {{scapy: "{expr}"}}', "sleep: 1ms"), tmp_path)
    assert not out.passed
    error = out.report["error"]
    assert error.startswith("step 4 (line 7) inject: ") and reason in error, error
    assert "\n" not in error and "Traceback" not in error, error
    assert [s["status"] for s in out.report["steps"]][3:] == ["fail", "skipped"]


@pytest.mark.root
@pytest.mark.timeout(60)
def test_dir_in_takes_only_tcp(tmp_path: Path) -> None:
    out = run(scenario('inject: {dir: in, scapy: "IP()/ICMP()"}'), tmp_path)
    assert not out.passed
    assert out.report["error"].endswith(
        "inject: dir: in hands one whole TCP segment to netemu's endpoint; the scapy "
        "packet is IP protocol 1, not TCP (send it with dir: out)"
    ), out.report["error"]


@pytest.mark.root
@pytest.mark.timeout(120)
def test_netemu_run_fails_with_the_reason_and_a_plain_run_imports_no_scapy(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(scenario('inject: {scapy: "IP()/TCPP()"}'))
    out = netemu("run", "-q", "-o", "r1", "bad.yaml", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines()[0] == f"notice: bad.yaml runs 1 Python snippet {OWN}"
    assert "Traceback" not in out.stdout + out.stderr
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert report["error"] == (
        "step 4 (line 7) inject: the scapy expression failed: NameError: name 'TCPP' is not defined"
    ), report["error"]
    (tmp_path / "plain.yaml").write_text(scenario("inject: {dir: in, flags: R}"))
    code = (
        "import asyncio, sys; from pathlib import Path; "
        "from netemu.scenario.loader import load_scenario; "
        "from netemu.scenario.session import run_scenario; "
        "out = asyncio.run(run_scenario(load_scenario('plain.yaml'), Path('r2'))); "
        "print(out.passed, 'scapy' in sys.modules)"
    )
    got = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert got.stdout.splitlines()[-1:] == ["True False"], got.stdout + got.stderr


@pytest.mark.root
@pytest.mark.timeout(60)
def test_a_raw_connections_handshake_in_scapy(tmp_path: Path) -> None:
    # On a raw connection, seq and ack come from the trace: our ISN, then after the
    # kernel's SYN+ACK, what the handshake's last ACK carries.
    out = run(
        """\
name: scapy_raw
peer: kernel
connections:
  r: {raw: true, port: 8080}
steps:
  - peer: {listen: 8080}
  - inject: {scapy: "IP()/TCP(sport=emu_port, dport=peer_port, flags='S', seq=seq)"}
  - expect_segment: {dir: in, flags: SYN+ACK, ack: 1}
  - inject: {scapy: "IP()/TCP(sport=emu_port, dport=peer_port, flags='A', seq=seq, ack=ack)"}
  - expect_peer_state: {conn: r, state: ESTABLISHED, within: 1s}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    ack = [s for s in out.report["segments"] if s["flags"] == "ACK"]
    assert [(s["mark"], s["seq"], s["ack"]) for s in ack] == [("injected", 1, 1)], ack


@pytest.mark.root
@pytest.mark.timeout(60)
def test_a_raw_connections_handshake_in_scapy_over_ipv6(tmp_path: Path, tshark: str) -> None:
    # family: ipv6: the expression builds IPv6(...)/TCP(...); its addresses are the
    # lab's IPv6 ones, and the kernel takes the handshake (a wrong checksum or address
    # would leave the socket in SYN-RECEIVED: the peer state says it was taken).
    text = """\
name: scapy_raw_v6
family: ipv6
peer: kernel
connections:
  r: {raw: true, port: 8080}
steps:
  - peer: {listen: 8080}
  - inject: {scapy: "IPv6()/TCP(sport=emu_port, dport=peer_port, flags='S', seq=seq)"}
  - expect_segment: {dir: in, flags: SYN+ACK, ack: 1}
  - inject: {scapy: "IPv6(hlim=7)/TCP(sport=emu_port, dport=peer_port, flags='A', seq=seq, ack=ack)"}
  - expect_peer_state: {conn: r, state: ESTABLISHED, within: 1s}
"""
    out = run(text, tmp_path)
    assert out.passed, out.report["error"]
    rows = tshark_fields(
        tshark, tmp_path / "run" / "trace.pcap", "tcp.flags.syn==0 && tcp.dstport==8080",
        "ipv6.src", "ipv6.dst", "ipv6.hlim", "tcp.checksum.status",
    )  # fmt: skip
    assert rows == [["2001:2::1", "2001:2::2", "7", "1"]], rows  # 1: good (0 bad)
    # An IPv4 layer on an IPv6 connection fails its step with the reason.
    wrong = run(text.replace('"IPv6()/TCP', '"IP()/TCP'), tmp_path / "w")
    assert not wrong.passed
    assert "no IPv6 layer, and this connection is IPv6 (build IPv6(...)/..." in (
        wrong.report["error"] or ""
    )


@pytest.mark.root
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "spoiled",
    [
        "inject: {flags: PSH+ACK, data: bad, bad_checksum: true}",
        "inject: {scapy: \"IP()/TCP(sport=emu_port, dport=peer_port, flags='PA', seq=seq, "
        "ack=ack, chksum=0x1234)/Raw(b'bad')\"}",
    ],
)
def test_a_segment_the_receiver_threw_away_moves_no_default(tmp_path: Path, spoiled: str) -> None:
    # A trial user's scenario: the kernel drops the bad-checksum segment unread, so the
    # next inject's default seq is where that one began (it used to come after it, and
    # the kernel answered the good segment with a duplicate ACK).
    out = run(
        f"""\
name: spoiled_then_good
peer: kernel
connections:
  r: {{raw: true, port: 8080}}
steps:
  - peer: {{listen: 8080}}
  - inject: {{flags: SYN}}
  - expect_segment: {{dir: in, flags: SYN+ACK, ack: 1}}
  - inject: {{flags: ACK}}
  - peer: accept
  - {spoiled}
  - expect_no_segment: {{dir: in, for: 200ms}}
  - inject: {{flags: PSH+ACK, data: abc}}
  - expect_segment: {{dir: in, flags: ACK, ack: 4}}
  - peer: {{expect: abc}}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    data = [s for s in out.report["segments"] if s["flags"] == "PSH+ACK"]
    assert [(s["seq"], s["len"]) for s in data] == [(1, 3), (1, 3)], data
    # the trace says why the kernel never answered them
    spoiled_frames = [s for s in out.report["segments"] if s["flags"] == "PSH+ACK"][:1]
    assert [s.get("note") for s in spoiled_frames] == ["bad checksum: the receiver drops it"]
