"""False passes of issue 16 that `netemu validate` now refuses: settings a run accepted
and then did nothing with, so a scenario passed without the thing its author set up.
Each is refused at its file:line:col (each test fails on the code before its fix, which
found nothing wrong), or else honoured (the tests that load the scenario)."""

from __future__ import annotations

import pytest

from netemu.scenario import validate_text
from netemu.scenario.loader import load_scenario_text

KERNEL_LISTENS = """\
  - peer: {listen: 8080}
"""

CASES = {
    # netemu's listener makes an accepted connection, with the listener's options
    "accepted_connection_options": (
        """\
name: x
peer: kernel
connections:
  s: {options: {nagle: false}}
steps:
  - listen: 9000
  - peer: {connect: 9000, conn: s}
  - accept: s
""",
        4,
        7,
        "connection 's' is opened by accept (line 8): it has the listener's options",
    ),
    # the peer picks the port it connects from
    "accepted_connection_port": (
        """\
name: x
peer: kernel
connections:
  s: {port: 5555}
steps:
  - listen: 9000
  - peer: {connect: 9000, conn: s}
  - accept: s
""",
        4,
        7,
        "connection 's' is opened by accept (line 8): the peer chooses its port",
    ),
    # the accept took the only listener's connection, on 9000
    "accepted_connection_local_port": (
        """\
name: x
peer: kernel
connections:
  s: {local_port: 9001}
steps:
  - listen: 9000
  - peer: {connect: 9000, conn: s}
  - accept: s
""",
        8,
        5,
        "no earlier listen on port 9001",
    ),
    # netemu's endpoint sends nothing on a raw connection
    "raw_connection_options": (
        """\
name: x
peer: kernel
connections:
  r: {raw: true, port: 8080, options: {mss: 500}}
steps:
  - peer: {listen: 8080}
  - inject: {flags: S}
""",
        4,
        30,
        "connection 'r' is raw: netemu's endpoint sends nothing on it",
    ),
    # the step's peer won, silently
    "connection_peer_conflict": (
        """\
name: x
peers: {hello: go-hello, echo: go-echo}
connections:
  e: {peer: echo}
steps:
  - connect: {conn: e, peer: hello}
""",
        6,
        30,
        "connection 'e' is peer 'echo''s (connections:), not 'hello''s",
    ),
    "env_of_a_kernel_peer": (
        """\
name: x
peer: {kind: kernel, env: {FOO: bar}}
steps:
  - peer: {listen: 8080}
""",
        2,
        22,
        "'env' is only for kind: command",
    ),
    # one namespace holds every peer of a scenario: one of the two values was lost
    "peers_sysctls_conflict": (
        """\
name: x
peers:
  a: {kind: kernel, sysctls: {net.ipv4.tcp_sack: 0}}
  b: {kind: go-echo, sysctls: {net.ipv4.tcp_sack: 1}}
steps:
  - connect: {conn: c, peer: b}
""",
        4,
        32,
        "peers 'a' and 'b' share one namespace: net.ipv4.tcp_sack is 0 for 'a'",
    ),
    "peers_congestion_conflict": (
        """\
name: x
peers:
  a: {kind: kernel, congestion_control: reno}
  b: {kind: go-echo, congestion_control: cubic}
steps:
  - connect: {conn: c, peer: b}
""",
        4,
        42,
        "peers 'a' and 'b' share one namespace: congestion_control is reno for 'a'",
    ),
    "connect_timeout_without_wait": (
        """\
name: x
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: {port: 8080, wait: false, timeout: 1s}
""",
        5,
        40,
        "'timeout' does nothing with 'wait: false'",
    ),
    "peer_listen_conn": (
        """\
name: x
peer: kernel
steps:
  - peer: {listen: 8080, conn: c}
  - connect: 8080
""",
        4,
        26,
        "a peer listen is on no connection: 'conn' does nothing",
    ),
    # netem holds nothing back without a delay, so nothing overtakes
    "reorder_without_delay": (
        """\
name: x
peer: kernel
network: {reorder: 25%, in: {delay: 10ms}}
steps:
  - peer: {listen: 8080}
""",
        3,
        20,
        "reorder needs a delay or jitter (in 'out'): without one nothing is held back",
    ),
    "relay_options": (
        """\
name: x
mode: relay
peers: {client: kernel, server: kernel}
options: {nagle: false}
steps:
  - peer: {peer: server, listen: 8080}
""",
        4,
        1,
        "relay mode has no endpoint of netemu's: 'options' do nothing",
    ),
    "relay_peer_port": (
        """\
name: x
mode: relay
peers: {client: kernel, server: {kind: kernel, port: 8080}}
steps:
  - peer: {peer: server, listen: 8080}
""",
        3,
        48,
        "a relay peer has no default port: 'port' does nothing",
    ),
    # two peers share the namespace: a listener on 8080 answered 'peer: b' though only a
    # listened there (a pass on another peer's socket)
    "peer_with_port_alone": (
        """\
name: x
peers: {a: kernel, b: kernel}
steps:
  - peer: {peer: a, listen: 8080}
  - expect_peer_state: {peer: b, port: 8080, state: LISTEN}
""",
        5,
        31,
        "'peer' with 'port' alone: the peers (a, b) share one namespace",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_refused_where_it_is_written(name: str) -> None:
    text, line, col, message = CASES[name]
    errors = validate_text(text, f"{name}.yaml")
    got = [f"{e.line}:{e.col}: {e.message}" for e in errors]
    assert any(message in e.message for e in errors), got
    assert [(e.line, e.col) for e in errors if message in e.message] == [(line, col)], got


def test_a_connections_peer_is_its_steps_default_peer() -> None:
    # It was ignored: with two peers the connect needed 'peer:' all the same.
    sc = load_scenario_text("""\
name: x
peers: {hello: go-hello, echo: go-echo}
connections:
  e: {peer: echo}
steps:
  - connect: {conn: e}
""")
    (step,) = sc.steps
    assert (step.peer, step.port) == ("echo", 8081)


def test_an_accepted_connections_local_port_says_which_listener() -> None:
    sc = load_scenario_text("""\
name: x
peer: kernel
connections:
  s: {local_port: 9001}
steps:
  - listen: 9000
  - listen: 9001
  - peer: {connect: 9001, conn: s}
  - accept: s
""")
    assert sc.steps[-1].port == 9001
