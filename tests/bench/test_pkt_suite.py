"""`netemu bench pkt-suite`: packetdrill's suite, netemu's verdict next to packetdrill's.

Unit tests of its parts (reasons, arguments, the IPv4 set, the JSON's keys, the copy of
the suite) on tiny scripts written here; root tests run the command on a folder of
them, and a stand-in for packetdrill in a throw-away namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from netemu.bench import pkt_stage
from netemu.bench import pkt_suite as ps

HANDSHAKE = """\
// A passive open: SYN in, SYN-ACK out, ACK in, accept.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
 +.02 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
"""
# Linux acknowledges the SYN's one sequence number, never two.
WRONG_ACK = HANDSHAKE.replace("> S. 0:0(0) ack 1 <...>", "> S. 0:0(0) ack 2 <...>")
NOT_PACKETDRILL = "    0 this is not a packetdrill event at all = 3\n"


def write(d: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def cli(*args: str, timeout: float = 250) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netemu", "bench", "pkt-suite", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- arguments and scripts ---------------------------------------------------------------


def test_ipv4_argv_is_run_all_pys():
    assert ps.ipv4_argv() == [
        "--send_omit_free",
        "--ip_version=ipv4",
        "--local_ip=192.168.0.1",
        "--gateway_ip=192.168.0.1",
        "--netmask_ip=255.255.0.0",
        "--remote_ip=192.0.2.1",
        "-D",
        "TFO_COOKIE=3021b9d889017eeb",
        "-D",
        "CODE=host_unreachable",
        "-D",
        "CMSG_LEVEL_IP=SOL_IP",
        "-D",
        "CMSG_TYPE_RECVERR=IP_RECVERR",
    ]
    ps.ipv4_argv().append("x")  # a copy each time
    assert ps.ipv4_argv()[-1] == "CMSG_TYPE_RECVERR=IP_RECVERR"


def test_variant_argv_is_run_all_pys_and_every_variant_loads():
    """run_all.py's CmdTestIPv6 and CmdTestIPv4Mappedv6 arguments; netemu's loader takes
    each (the addresses of their family, the defines) for a plain script."""
    v6 = ps.variant_argv("ipv6")
    assert v6[:6] == [
        "--send_omit_free",
        "--ip_version=ipv6",
        "--mtu=1520",
        "--local_ip=fd3d:0a0b:17d6::1",
        "--gateway_ip=fd3d:0a0b:17d6:8888::1",
        "--remote_ip=fd3d:fa7b:d17d::1",
    ]
    assert "CMSG_LEVEL_IP=SOL_IPV6" in v6 and "TFO_COOKIE=c1d1e9742a47a9bc" in v6
    mapped = ps.variant_argv("ipv4-mapped-ipv6")
    assert mapped[1] == "--ip_version=ipv4-mapped-ipv6" and "CODE=host_unreachable" in mapped
    assert ps.variant_argv("ipv4") == ps.ipv4_argv()
    from netemu.pkt import load_pkt_text

    for version in ps.VARIANT_ARGS:
        sc = load_pkt_text(HANDSHAKE, "t.pkt", ps.variant_argv(version))
        assert sc.ip_version == version


def test_ipv6_runs_all_but_the_ipv4_only_names(tmp_path: Path):
    """run_all.py's CmdsTests: over IPv6 every script but those ending in v4.pkt; over
    IPv4-mapped IPv6 the IPv4 set."""
    write(
        tmp_path,
        {
            "plain.pkt": HANDSHAKE,
            "mtu/basic-v4.pkt": HANDSHAKE,
            "mtu/basic-v6.pkt": HANDSHAKE,
            "opt/header.pkt": "--ip_version=ipv6\n--local_ip=fd::1\n" + HANDSHAKE,
        },
    )
    rel = lambda ps_: sorted(p.relative_to(tmp_path).as_posix() for p in ps_)  # noqa: E731
    keep, out = ps.select(ps.find_scripts(tmp_path), "ipv6")
    assert rel(keep) == ["mtu/basic-v6.pkt", "opt/header.pkt", "plain.pkt"]
    assert rel(out) == ["mtu/basic-v4.pkt"]
    keep, out = ps.select(ps.find_scripts(tmp_path), "ipv4-mapped-ipv6")
    assert rel(keep) == ["mtu/basic-v4.pkt", "plain.pkt"]


def test_packetdrill_command_runs_in_a_fresh_namespace_with_lo_up(tmp_path: Path):
    cmd = ps.packetdrill_command("/opt/packetdrill", tmp_path / "a" / "x.pkt", ps.ipv4_argv())
    assert cmd[:3] == ["unshare", "-n", "--"]
    assert "ip link set dev lo up" in cmd[cmd.index("-c") + 1]
    i = cmd.index("/opt/packetdrill")
    assert cmd[i + 1 :] == [*ps.ipv4_argv(), "x.pkt"]  # the name only: cwd is its folder


def test_find_scripts_recursive_and_sorted(tmp_path: Path):
    write(
        tmp_path, {"b/z.pkt": "", "a.pkt": "", "b/a/y.pkt": "", "c/readme.txt": "", "b-x.pkt": ""}
    )
    got = [p.relative_to(tmp_path).as_posix() for p in ps.find_scripts(tmp_path)]
    assert got == sorted(got) == ["a.pkt", "b-x.pkt", "b/a/y.pkt", "b/z.pkt"]


def test_ipv6_only_scripts_are_left_out(tmp_path: Path):
    write(
        tmp_path,
        {
            "plain.pkt": HANDSHAKE,
            "mtu/basic-v4.pkt": HANDSHAKE,
            "mtu/basic-v6.pkt": HANDSHAKE,  # run_all.py: name ends in v6.pkt
            "fo/syn-data-ipv6.pkt": HANDSHAKE,  # so does this one
            "opt/header.pkt": "// v6 only\n--ip_version=ipv6\n--local_ip=fd::1\n" + HANDSHAKE,
            "opt/v4-header.pkt": "--ip_version=ipv4\n" + HANDSHAKE,
            "opt/mention.pkt": "// not --ip_version=ipv6 here\n" + HANDSHAKE,
        },
    )
    keep, out = ps.select_ipv4(ps.find_scripts(tmp_path))
    rel = [p.relative_to(tmp_path).as_posix() for p in keep]
    assert rel == ["mtu/basic-v4.pkt", "opt/mention.pkt", "opt/v4-header.pkt", "plain.pkt"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in out) == [
        "fo/syn-data-ipv6.pkt",
        "mtu/basic-v6.pkt",
        "opt/header.pkt",
    ]


# --- reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, reason",
    [
        (
            "system call 'epoll_wait' is not supported (supported: socket, bind, listen)",
            "syscall epoll_wait",
        ),
        ("TCP option 'FO' is not supported (supported: mss, wscale)", "option FO"),
        ("TCP option 'FOEXP' is not supported", "option FOEXP"),
        (
            "socket option TCP_FASTOPEN is not supported at SOL_TCP (supported: TCP_NODELAY)",
            "sockopt TCP_FASTOPEN",
        ),
        ("unsupported symbol 'MSG_EOR' for flags in send()", "symbol MSG_EOR"),
        ("option --tcp_ts_tick_usecs is not supported", "flag --tcp_ts_tick_usecs"),
        ("IP header fields ('[ect0]', '[noecn]', ...) are not supported", "IP header fields"),
        ("'urg' in a packet is not supported", "packet urg"),
        # the fallback: asides dropped, numbers and quoted names normalized
        (
            "expected a time ('0', '+.1', '0.1~0.2' or '*') at the start of an event, found '-'",
            "expected a time at the start of an event, found '-'",
        ),
        (
            "expected '...' for the buffer of write(), got 'NULL'",
            "expected '...' for the buffer of write(), got 'X'",
        ),
        (
            "window 65535 is larger than 1024 at offset 0x1f",
            "window N is larger than N at offset N",
        ),
        ("", "unknown"),
    ],
)
def test_classify(message: str, reason: str):
    assert ps.classify(message) == reason


def test_classify_groups_the_same_problem_of_different_scripts():
    a = ps.classify("expected 4 arguments to foo(), got 3")
    b = ps.classify("expected 2 arguments to foo(), got 5")
    assert a == b == "expected N arguments to foo(), got N"


def test_pkt_error_reason_is_the_first_problem_with_its_line():
    from netemu.pkt import PktError

    e = PktError("x.pkt", 7, 3, "system call 'ioctl' is not supported (supported: read)")
    e.errors.append(PktError("x.pkt", 9, 1, "TCP option 'FO' is not supported"))
    assert ps._pkt_error_parts(e) == ("system call 'ioctl' is not supported (supported: read)", 7)


def test_last_line():
    assert ps.last_line("a\nb: failed\n\n  \n") == "b: failed"
    assert ps.last_line("") is None


# --- the result --------------------------------------------------------------------------


def verdicts(*items: tuple[str, str | None]) -> list[ps.Verdict]:
    out = []
    for verdict, reason in items:
        out.append(ps.Verdict(verdict, reason, 0.5, reason if verdict == "unsupported" else None))
    return out


def test_summary_keys_and_figures():
    names = ["a.pkt", "b/c.pkt", "d.pkt", "e.pkt"]
    ne = verdicts(
        ("pass", None),
        ("unsupported", "option FO"),
        ("fail", "line 3: no"),
        ("unsupported", "option FO"),
    )
    pd = verdicts(("pass", None), ("pass", None), ("fail", "script: error"), ("fail", "x"))
    r = ps.summarize(names, ne, pd)
    assert tuple(r) == ps.KEYS
    assert r["ip_version"] == "ipv4"  # summarize's default
    assert set(r) == {
        "ip_version",
        "scripts",
        "left_out",
        "netemu_pass",
        "packetdrill_pass",
        "agree",
        "agree_pct",
        "netemu_only_pass",
        "packetdrill_only_pass",
        "unsupported",
        "netemu_late_runs",
        "netemu_wall_s",
        "packetdrill_wall_s",
        "rows",
    }
    assert all(tuple(row) == ps.ROW_KEYS for row in r["rows"])
    assert r["scripts"] == 4 and r["netemu_pass"] == 1 and r["packetdrill_pass"] == 2
    # unsupported counts as a fail: it agrees with a packetdrill failure
    assert [row["agree"] for row in r["rows"]] == [True, False, True, True]
    assert r["agree"] == 3 and r["agree_pct"] == 75.0
    assert r["netemu_only_pass"] == [] and r["packetdrill_only_pass"] == ["b/c.pkt"]
    assert r["unsupported"] == {"option FO": 2}
    assert r["netemu_wall_s"] == r["packetdrill_wall_s"] == 2.0
    row = r["rows"][2]
    assert row == {
        "script": "d.pkt",
        "netemu": "fail",
        "packetdrill": "fail",
        "agree": True,
        "netemu_reason": "line 3: no",
        "packetdrill_reason": "script: error",
        "netemu_s": 0.5,
        "packetdrill_s": 0.5,
    }
    json.dumps(r)
    text = ps.render(r, excluded=2)
    assert "b/c.pkt" in text and "option FO" in text and "2 IPv6-only left out" in text
    assert "packetdrill fails (2)" in text


def test_summary_without_packetdrill_has_nulls():
    late = ps.Verdict("late", "netemu was late by 30.0 ms at line 8", 1.0, late_runs=3)
    r = ps.summarize(["a.pkt", "b.pkt"], [late, ps.Verdict("fail", "x", 1.0, late_runs=1)],
                     verdicts(("fail", "y"), ("fail", "z")))  # fmt: skip
    # a run netemu was late in every time has no verdict: it agrees with no failure
    assert [row["agree"] for row in r["rows"]] == [False, True]
    assert r["netemu_late_runs"] == 4 and r["agree"] == 1
    r = ps.summarize(["a.pkt"], verdicts(("fail", "timeout after 60 s")), None)
    assert tuple(r) == ps.KEYS
    for key in (
        "packetdrill_pass",
        "agree",
        "agree_pct",
        "netemu_only_pass",
        "packetdrill_only_pass",
        "packetdrill_wall_s",
    ):
        assert r[key] is None, key
    assert r["rows"][0]["packetdrill"] is None and r["rows"][0]["agree"] is None
    assert r["rows"][0]["packetdrill_s"] is None and r["rows"][0]["packetdrill_reason"] is None
    assert "packetdrill" not in ps.render(r).splitlines()[-1]


# --- the copy of the suite ---------------------------------------------------------------


def test_stage_makes_symlinks_checked_out_as_text_links_again(tmp_path: Path):
    outer = tmp_path / "net"
    write(
        outer,
        {
            "common/init.sh": "#!/bin/sh\nexit 0\n",
            "suite/common/init.sh": "../../common/init.sh",  # a symlink as text
            "suite/common/notes.txt": "see ../README for more\n",
            "suite/common/word.txt": "init.sh",  # names a sibling: a stub too
            "suite/x/a.pkt": "`../common/init.sh`\n" + HANDSHAKE,
        },
    )
    (outer / "common/init.sh").chmod(0o755)
    dst, fixed = pkt_stage.stage(outer / "suite", tmp_path / "copy")
    assert dst.name == "suite" and dst.is_relative_to(tmp_path / "copy")
    assert fixed == ["common/init.sh", "common/word.txt"]
    link = dst / "common/init.sh"
    assert link.is_symlink() and link.resolve() == (outer / "common/init.sh").resolve()
    assert os.access(link, os.X_OK)
    assert not (dst / "common/notes.txt").is_symlink()
    assert (dst / "x/a.pkt").read_text() == (outer / "suite/x/a.pkt").read_text()
    assert not (dst / "x/a.pkt").is_symlink()
    # the original is left alone
    assert (outer / "suite/common/init.sh").read_text() == "../../common/init.sh"


def test_stage_keeps_what_scripts_reach_above_the_suite(tmp_path: Path):
    """``../../common/init.sh`` from ``suite/deep/`` is the suite's neighbour: the copy
    sits in a mirror of the suite's parent, and removing it leaves the originals."""
    outer = tmp_path / "src" / "net"
    write(
        outer,
        {
            "common/init.sh": "#!/bin/sh\n",
            "other/file": "x",
            "suite/deep/a.pkt": "`../../common/init.sh`\n" + HANDSHAKE,
            "suite/deep/er/b.pkt": "`../../../common/init.sh`\n" + HANDSHAKE,
            "suite/top.pkt": HANDSHAKE,
        },
    )
    assert pkt_stage.levels_up(outer / "suite") == 1
    assert pkt_stage.levels_up(outer / "suite" / "deep") == 2
    staging = tmp_path / "copy"
    dst, _ = pkt_stage.stage(outer / "suite", staging)
    assert dst == staging / "net" / "suite"
    assert (dst / "deep" / ".." / ".." / "common" / "init.sh").is_file()
    assert (dst / "deep/er/../../../common/init.sh").is_file()
    assert (dst.parent / "other").is_symlink() and not (dst.parent / "suite").is_symlink()
    shutil.rmtree(staging)
    assert (outer / "common/init.sh").is_file() and (outer / "other/file").is_file()
    write(tmp_path / "flat", {"a.pkt": HANDSHAKE})
    assert pkt_stage.levels_up(tmp_path / "flat") == 0
    dst, _ = pkt_stage.stage(tmp_path / "flat", staging)
    assert dst == staging / "flat" and (dst / "a.pkt").is_file()


def test_stub_detection_is_strict(tmp_path: Path):
    write(
        tmp_path,
        {
            "t.sh": "#!/bin/sh\n",
            "ok": "t.sh\n",
            "gone": "missing.sh",
            "self": "self",
            "two": "t.sh t.sh",
            "exe": "t.sh",
        },
    )
    (tmp_path / "exe").chmod(0o755)
    assert pkt_stage.symlink_stub_target(tmp_path / "ok") == (tmp_path / "t.sh").resolve()
    for name in ("gone", "self", "two", "exe", "t.sh"):
        assert pkt_stage.symlink_stub_target(tmp_path / name) is None, name


# --- the command's arguments ---------------------------------------------------------------


def args(**kw) -> argparse.Namespace:
    base = {
        "suite_dir": None,
        "packetdrill": None,
        "filter": None,
        "timeout": 60.0,
        "keep": None,
        "json": True,
        "ip_version": "ipv4",
    }
    base.update(kw)
    return argparse.Namespace(**base)


def test_bad_arguments_exit_2(tmp_path: Path, capsys):
    assert ps.main(args()) == 2
    assert ps.main(args(suite_dir=str(tmp_path / "missing"))) == 2
    assert ps.main(args(suite_dir=str(tmp_path))) == 2  # no .pkt under it
    write(tmp_path, {"a.pkt": HANDSHAKE, "b-v6.pkt": HANDSHAKE})
    assert ps.main(args(suite_dir=str(tmp_path), filter="nothing")) == 2
    assert ps.main(args(suite_dir=str(tmp_path), filter="v6")) == 2  # IPv6-only: none left
    assert ps.main(args(suite_dir=str(tmp_path), timeout=0)) == 2
    assert ps.main(args(suite_dir=str(tmp_path), packetdrill=str(tmp_path / "a.pkt"))) == 2
    err = capsys.readouterr().err
    assert "no .pkt" in err and "not an executable" in err
    assert capsys.readouterr().out == ""


def test_cli_registration(tmp_path: Path):
    out = cli(str(tmp_path / "missing"), "--json", timeout=60)
    assert out.returncode == 2 and "no such file" in out.stderr and out.stdout == ""
    out = subprocess.run(
        [sys.executable, "-m", "netemu", "bench", "-h"], capture_output=True, text=True, timeout=60
    )
    assert "pkt-suite" in out.stdout and "--packetdrill" in out.stdout


def test_no_cc_exits_3(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(ps.shutil, "which", lambda name: None)
    with pytest.raises(ps.SuiteError) as e:
        ps.build_shim(tmp_path)
    assert e.value.status == 3 and "cc" in str(e.value)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_shim_builds_once(tmp_path: Path):
    so = ps.build_shim(tmp_path)
    assert so.is_file() and so.parent == tmp_path and so.suffix == ".so"
    mtime = so.stat().st_mtime_ns
    assert ps.build_shim(tmp_path) == so and so.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [so.name]  # no temporary left


# --- root ------------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_shim_gives_tcp_sockets_cubic_in_a_fresh_namespace(tmp_path: Path):
    so = ps.build_shim(tmp_path)
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)\n"
        "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)"
        ".rstrip(b'\\0').decode())\n"
    )
    out = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, LD_PRELOAD=str(so)),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cubic"


@pytest.mark.root
def test_packetdrill_side_with_a_stand_in(tmp_path: Path):
    """A fake packetdrill: passes on one script, fails with a message on another, hangs
    on a third; each runs from its folder, in a namespace of its own with lo up."""
    fake = tmp_path / "fake-packetdrill"
    fake.write_text(
        "#!/bin/sh\n"
        "for a; do last=$a; done\n"
        "ip -o link show lo | grep -q UP || { echo 'lo down' >&2; exit 9; }\n"
        "[ -e ./$last ] || { echo 'not in its folder' >&2; exit 8; }\n"
        "case $last in\n"
        "  good.pkt) exit 0;;\n"
        "  slow.pkt) sleep 30;;\n"
        "  *) echo 'first line' >&2; echo \"$last:3: error: bad packet\" >&2;"
        " exit 1;;\n"
        "esac\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    write(tmp_path, {"s/good.pkt": "", "s/bad.pkt": "", "s/slow.pkt": ""})
    argv = ps.ipv4_argv()
    good = ps.run_packetdrill(str(fake), tmp_path / "s/good.pkt", argv, 10, None)
    assert (good.verdict, good.reason) == ("pass", None)
    bad = ps.run_packetdrill(
        str(fake), tmp_path / "s/bad.pkt", argv, 10, None, keep=tmp_path / "keep/bad.log"
    )
    assert (bad.verdict, bad.reason) == ("fail", "bad.pkt:3: error: bad packet")
    assert "exit status: 1" in (tmp_path / "keep/bad.log").read_text()
    slow = ps.run_packetdrill(str(fake), tmp_path / "s/slow.pkt", argv, 0.5, None)
    assert slow.verdict == "fail" and slow.reason == "timeout after 0.5 s"
    assert slow.seconds < 5


@pytest.mark.root
@pytest.mark.timeout(300)
def test_suite_on_tiny_scripts_json(tmp_path: Path):
    suite = tmp_path / "suite"
    write(
        suite,
        {
            "open/handshake.pkt": HANDSHAKE,
            "open/wrong-ack.pkt": WRONG_ACK,
            "garbage.pkt": NOT_PACKETDRILL,
            "open/handshake-v6.pkt": HANDSHAKE,
        },
    )
    out = cli(str(suite), "--json", "--timeout", "30", "--keep", str(tmp_path / "keep"))
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert tuple(r) == ps.KEYS
    assert r["scripts"] == 3  # the -v6 one is IPv6-only
    assert r["left_out"] == ["open/handshake-v6.pkt"] and r["ip_version"] == "ipv4"
    assert "left out over IPv4: 1 IPv6-only script(s), as run_all.py: handshake-v6.pkt" in (
        out.stderr
    )
    rows = {row["script"]: row for row in r["rows"]}
    assert list(rows) == ["garbage.pkt", "open/handshake.pkt", "open/wrong-ack.pkt"]
    assert rows["open/handshake.pkt"]["netemu"] == "pass", rows["open/handshake.pkt"]
    assert rows["open/handshake.pkt"]["netemu_reason"] is None
    assert rows["open/wrong-ack.pkt"]["netemu"] == "fail"
    assert rows["open/wrong-ack.pkt"]["netemu_reason"]
    assert rows["garbage.pkt"]["netemu"] == "unsupported"
    assert r["netemu_pass"] == 1
    assert sum(r["unsupported"].values()) == 1
    for key in (
        "packetdrill_pass",
        "agree",
        "agree_pct",
        "netemu_only_pass",
        "packetdrill_only_pass",
        "packetdrill_wall_s",
    ):
        assert r[key] is None, key
    assert r["netemu_wall_s"] == pytest.approx(sum(x["netemu_s"] for x in r["rows"]), abs=0.01)
    assert (tmp_path / "keep/netemu/open/handshake/report.json").is_file()
    assert json.loads((tmp_path / "keep/suite.json").read_text()) == r
    # the text form: one line per script, then the figures
    out = cli(str(suite), "--filter", "handshake", "--timeout", "30")
    assert out.returncode == 0, out.stderr
    assert "open/handshake.pkt" in out.stdout and "wrong-ack" not in out.stdout
    assert "netemu passes 1" in out.stdout


@pytest.mark.parametrize(
    "late_times, verdict, late_runs", [(0, "pass", 0), (2, "pass", 2), (3, "late", 3)]
)
def test_a_run_netemu_was_late_in_is_run_again(
    tmp_path: Path, monkeypatch, late_times: int, verdict: str, late_runs: int
):
    """netemu's own lateness is no verdict on the kernel: the script runs again, twice at
    most; late all three times, it is "late" (not a pass, and agreeing with nothing)."""
    import netemu.pkt.session as session
    from netemu.run.result import Outcome

    calls = []

    async def fake_run_pkt(sc, run_dir, write=True, **kw):
        calls.append(1)
        late = "netemu was late by 30.0 ms at line 3" if len(calls) <= late_times else None
        return Outcome(sc, late is None, run_dir, {"netemu_late": late, "error": late}, "")

    monkeypatch.setattr(session, "run_pkt", fake_run_pkt)
    (tmp_path / "a.pkt").write_text(HANDSHAKE)
    v = ps.run_netemu(tmp_path / "a.pkt", ps.ipv4_argv(), 10.0)
    assert (v.verdict, v.late_runs, len(calls)) == (verdict, late_runs, min(late_times + 1, 3))
    if verdict == "late":
        assert v.reason == "netemu was late by 30.0 ms at line 3"
