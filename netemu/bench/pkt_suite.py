"""`netemu bench pkt-suite DIR`: packetdrill's own suite, netemu's verdict next to
packetdrill's, script by script.

Every ``*.pkt`` under DIR (recursively, sorted as packetdrill's ``run_all.py`` sorts
them) that runs over the IP version ``--ip-version`` names (ipv4 by default; ipv6,
ipv4-mapped-ipv6) is run

- by netemu, in this process, one after another: ``load_pkt(path, argv)`` with
  ``argv`` the arguments ``run_all.py`` gives packetdrill for that version
  (``IPV4_ARGS``, ``IPV6_ARGS``, ``MAPPED_ARGS``), then ``run_pkt`` in a fresh lab. A
  ``PktError`` from the loader makes the script *unsupported* (a verdict of fail, with
  a short reason: ``classify``);
- with ``--packetdrill PATH``, by packetdrill with the same arguments, each in a
  throw-away network namespace (``unshare -n``, ``lo`` up, as ``in_netns.sh`` does),
  cwd the script's folder. packetdrill's scripts assume cubic, which ``defaults.sh``
  sets by sysctl; a non-initial namespace may refuse it (this host's choice is "reno
  bbr"), so an LD_PRELOAD shim (``cubic_shim.c``, compiled with ``cc`` on first use
  into ``$XDG_CACHE_HOME/netemu``) sets it on every new TCP socket instead.

Which scripts, as run_all.py's CmdsTests: over IPv4 and IPv4-mapped IPv6, all but
those whose name ends in ``v6.pkt`` (and those whose own options say
``--ip_version=ipv6``); over IPv6, all but those whose name ends in ``v4.pkt``.

Both sides run on a copy of DIR in a temporary folder (so no script writes into the
suite): a file that holds nothing but the relative path of another (a symlink checked
out as text, e.g. ``tcp/common/defaults.sh`` in a snapshot without symlinks) becomes
that symlink again there, else every init line running it would fail (``pkt_stage``).

``--json`` prints one object: ``ip_version``, ``scripts``, ``left_out`` (the scripts
of DIR that do not run over that version), ``netemu_pass``, ``packetdrill_pass``,
``agree``, ``agree_pct``, ``netemu_only_pass``, ``packetdrill_only_pass``,
``unsupported`` (short reason of the first problem -> scripts), ``netemu_late_runs``
(netemu's runs thrown away because netemu itself was late: each such script is run
again, twice at most, and is "late", not a pass, if it never ran on time),
``netemu_wall_s``,
``packetdrill_wall_s`` (each side's sum of per-script wall time, process start and
namespace set-up included) and ``rows``; the comparison figures are null without
``--packetdrill``. Exit status: 0 it ran (the figures are the result), 2 bad
arguments, 3 environment (not root, no ``cc``, no ``unshare``/``ip``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from .pkt_runs import (
    SHIM_SOURCE,
    SuiteError,
    Verdict,
    _pkt_error_parts,
    build_shim,
    cache_dir,
    classify,
    last_line,
    packetdrill_command,
    run_netemu,
    run_packetdrill,
)
from .pkt_stage import stage

__all__ = [
    "SHIM_SOURCE",
    "SuiteError",
    "Verdict",
    "_pkt_error_parts",
    "build_shim",
    "cache_dir",
    "classify",
    "last_line",
    "packetdrill_command",
    "run_netemu",
    "run_packetdrill",
]

# run_all.py's CmdTestIPv4 (after its default --send_omit_free); the script's name last.
IPV4_ARGS: tuple[str, ...] = (
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
)

# run_all.py's CmdTestIPv6 and CmdTestIPv4Mappedv6.
IPV6_ARGS: tuple[str, ...] = (
    "--send_omit_free",
    "--ip_version=ipv6",
    "--mtu=1520",
    "--local_ip=fd3d:0a0b:17d6::1",
    "--gateway_ip=fd3d:0a0b:17d6:8888::1",
    "--remote_ip=fd3d:fa7b:d17d::1",
    "-D",
    "TFO_COOKIE=c1d1e9742a47a9bc",
    "-D",
    "CMSG_LEVEL_IP=SOL_IPV6",
    "-D",
    "CMSG_TYPE_RECVERR=IPV6_RECVERR",
)
MAPPED_ARGS: tuple[str, ...] = (
    "--send_omit_free",
    "--ip_version=ipv4-mapped-ipv6",
    "--local_ip=192.168.0.1",
    "--gateway_ip=192.168.0.1",
    "--netmask_ip=255.255.0.0",
    "--remote_ip=192.0.2.1",
    "-D",
    "TFO_COOKIE=3021b9d889017eeb",
    "-D",
    "CODE=host_unreachable",
    "-D",
    "CMSG_LEVEL_IP=SOL_IPV6",
    "-D",
    "CMSG_TYPE_RECVERR=IPV6_RECVERR",
)
VARIANT_ARGS = {"ipv4": IPV4_ARGS, "ipv6": IPV6_ARGS, "ipv4-mapped-ipv6": MAPPED_ARGS}
VARIANT_NAMES = {"ipv4": "IPv4", "ipv6": "IPv6", "ipv4-mapped-ipv6": "IPv4-mapped IPv6"}

DEFAULT_TIMEOUT = 60.0
KEYS = (
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
)
ROW_KEYS = (
    "script",
    "netemu",
    "packetdrill",
    "agree",
    "netemu_reason",
    "packetdrill_reason",
    "netemu_s",
    "packetdrill_s",
)


def ipv4_argv() -> list[str]:
    """packetdrill's command line for an IPv4 run, as run_all.py builds it (no script)."""
    return list(IPV4_ARGS)


def variant_argv(version: str) -> list[str]:
    """packetdrill's command line for a run over ``version`` (ipv4, ipv6,
    ipv4-mapped-ipv6), as run_all.py builds it (no script)."""
    return list(VARIANT_ARGS[version])


# --- which scripts ---------------------------------------------------------------------


def find_scripts(root: Path) -> list[Path]:
    """Every ``*.pkt`` under ``root`` (or ``root`` itself), sorted by path as run_all.py."""
    if root.is_file():
        return [root]
    found = [Path(d) / f for d, _, files in os.walk(root) for f in files if f.endswith(".pkt")]
    return sorted(found, key=lambda p: str(p))


_IPV6_OPTION = re.compile(r"^[ \t]*--ip_version=ipv6[ \t]*$", re.MULTILINE)


def is_ipv6_only(path: Path, text: str | None = None) -> bool:
    """run_all.py's rule (a name ending in ``v6.pkt`` runs over IPv6 only), or the
    script's own option line ``--ip_version=ipv6``."""
    if path.name.endswith("v6.pkt"):
        return True
    if text is None:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return False
    return bool(_IPV6_OPTION.search(text))


def select_ipv4(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the scripts that run over IPv4, the IPv6-only ones left out)."""
    return select(paths, "ipv4")


def select(paths: list[Path], version: str) -> tuple[list[Path], list[Path]]:
    """(the scripts that run over ``version``, those left out), as run_all.py's
    CmdsTests: a name ending in ``v6.pkt`` (or a script whose own option line says
    ``--ip_version=ipv6``) runs over IPv6 only, one ending in ``v4.pkt`` over IPv4 and
    IPv4-mapped IPv6 only."""
    keep: list[Path] = []
    out: list[Path] = []
    for p in paths:
        if version == "ipv6":
            (out if p.name.endswith("v4.pkt") else keep).append(p)
        else:
            (out if is_ipv6_only(p) else keep).append(p)
    return keep, out


# --- the result ------------------------------------------------------------------------


def summarize(
    names: list[str],
    netemu: list[Verdict],
    packetdrill: list[Verdict] | None,
    ip_version: str = "ipv4",
    left_out: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON object (keys: KEYS) from both sides' verdicts, script by script."""
    rows: list[dict[str, Any]] = []
    unsupported: dict[str, int] = {}
    for i, name in enumerate(names):
        n = netemu[i]
        p = packetdrill[i] if packetdrill is not None else None
        n_pass = n.verdict == "pass"
        if n.unsupported is not None:
            unsupported[n.unsupported] = unsupported.get(n.unsupported, 0) + 1
        rows.append(
            {
                "script": name,
                "netemu": n.verdict,
                "packetdrill": p.verdict if p is not None else None,
                # netemu "late" (no verdict on the kernel) agrees with nothing
                "agree": (n.verdict != "late" and n_pass == (p.verdict == "pass"))
                if p is not None
                else None,
                "netemu_reason": n.reason,
                "packetdrill_reason": p.reason if p is not None else None,
                "netemu_s": round(n.seconds, 3),
                "packetdrill_s": round(p.seconds, 3) if p is not None else None,
            }
        )
    have_pd = packetdrill is not None
    agree = sum(1 for r in rows if r["agree"]) if have_pd else None
    return {
        "ip_version": ip_version,
        "scripts": len(rows),
        "left_out": list(left_out or []),
        "netemu_pass": sum(1 for r in rows if r["netemu"] == "pass"),
        "packetdrill_pass": sum(1 for r in rows if r["packetdrill"] == "pass") if have_pd else None,
        "agree": agree,
        "agree_pct": (round(100.0 * agree / len(rows), 1) if rows else 0.0)
        if agree is not None
        else None,
        "netemu_only_pass": [
            r["script"] for r in rows if r["netemu"] == "pass" and r["packetdrill"] != "pass"
        ]
        if have_pd
        else None,
        "packetdrill_only_pass": [
            r["script"] for r in rows if r["packetdrill"] == "pass" and r["netemu"] != "pass"
        ]
        if have_pd
        else None,
        "unsupported": dict(sorted(unsupported.items(), key=lambda kv: (-kv[1], kv[0]))),
        "netemu_late_runs": sum(v.late_runs for v in netemu),
        "netemu_wall_s": round(sum(v.seconds for v in netemu), 3),
        "packetdrill_wall_s": (
            round(sum(v.seconds for v in packetdrill), 3) if packetdrill is not None else None
        ),
        "rows": rows,
    }


def _short(text: str | None, width: int = 110) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def render(r: dict[str, Any], excluded: int = 0) -> str:
    rows = r["rows"]
    have_pd = r["packetdrill_pass"] is not None
    w = max([len(x["script"]) for x in rows] + [6])
    out = [f"{'script':<{w}}  {'netemu':<11}  {'packetdrill':<11}  {'agree':<5}  netemu's reason"]
    for x in rows:
        pd = x["packetdrill"] or "-"
        ag = "-" if x["agree"] is None else ("yes" if x["agree"] else "NO")
        out.append(
            f"{x['script']:<{w}}  {x['netemu']:<11}  {pd:<11}  {ag:<5}  "
            f"{_short(x['netemu_reason'])}".rstrip()
        )
    n = r["scripts"]
    version = r.get("ip_version", "ipv4")
    only = "IPv4" if version == "ipv6" else "IPv6"
    left_out = f"; {excluded} {only}-only left out" if excluded else ""
    out.append("")
    out.append(
        f"{n} scripts ({VARIANT_NAMES[version]}{left_out}): netemu passes {r['netemu_pass']}, "
        f"{sum(1 for x in rows if x['netemu'] == 'unsupported')} unsupported, "
        f"{r['netemu_wall_s']:.1f} s"
    )
    if have_pd:
        out.append(
            f"packetdrill passes {r['packetdrill_pass']}, {r['packetdrill_wall_s']:.1f} s; "
            f"same verdict on {r['agree']} ({r['agree_pct']:.1f} %)"
        )
        out.append(
            f"netemu only passes: {len(r['netemu_only_pass'])}; packetdrill only "
            f"passes: {len(r['packetdrill_only_pass'])}"
        )
        fails = [x for x in rows if x["packetdrill"] != "pass"]
        if fails:
            out.append(f"packetdrill fails ({len(fails)}):")
            out.extend(f"  {x['script']}: {_short(x['packetdrill_reason'], 140)}" for x in fails)
    if r["unsupported"]:
        out.append("unsupported by netemu (first problem per script):")
        out.extend(f"  {c:4d}  {k}" for k, c in r["unsupported"].items())
    return "\n".join(out)


# --- the command -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """pkt-suite's arguments, on `netemu bench`'s parser (--json is bench's own)."""
    g = parser.add_argument_group(
        "pkt-suite (netemu bench pkt-suite DIR [--packetdrill PATH] [--json] [--ip-version V] "
        "[--filter SUBSTR] "
        "[--timeout S] [--keep DIR]; root)"
    )
    g.add_argument(
        "suite_dir",
        nargs="?",
        metavar="DIR",
        help="pkt-suite: folder of .pkt scripts (packetdrill's gtests/net/tcp)",
    )
    g.add_argument(
        "--packetdrill",
        metavar="PATH",
        help="pkt-suite: also run this packetdrill binary on every script; run: time it on "
        "a trivial .pkt beside `netemu run` (packetdrill_ms, ratio)",
    )
    g.add_argument(
        "--ip-version",
        choices=tuple(VARIANT_ARGS),
        default="ipv4",
        help="pkt-suite: run every script over this IP version, with the arguments "
        "packetdrill's run_all.py gives it (default ipv4)",
    )
    g.add_argument(
        "--filter",
        metavar="SUBSTR",
        help="pkt-suite: only scripts whose path under DIR contains SUBSTR",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"pkt-suite: per script, each side (default {DEFAULT_TIMEOUT:g})",
    )
    g.add_argument(
        "--keep",
        metavar="DIR",
        help="pkt-suite: keep netemu's run directories and packetdrill's output "
        "there (netemu then writes its pcap and ladders: slower)",
    )


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def prepare(args: argparse.Namespace) -> tuple[Path, list[Path], list[Path], str | None]:
    """(root, scripts, IPv6-only left out, packetdrill binary); SuiteError on bad input."""
    if not getattr(args, "suite_dir", None):
        raise SuiteError("DIR is required: netemu bench pkt-suite DIR", 2)
    root = Path(args.suite_dir).resolve()
    if not root.exists():
        raise SuiteError(f"{args.suite_dir}: no such file or folder", 2)
    if args.timeout is None or args.timeout <= 0:
        raise SuiteError("--timeout must be positive", 2)
    scripts = find_scripts(root)
    if root.is_file():
        if root.suffix != ".pkt":
            raise SuiteError(f"{args.suite_dir}: not a .pkt script", 2)
        root = root.parent
    if not scripts:
        raise SuiteError(f"{args.suite_dir}: no .pkt scripts under it", 2)
    keep, left_out = select(scripts, args.ip_version)
    if args.filter:
        keep = [p for p in keep if args.filter in p.relative_to(root).as_posix()]
        left_out = [p for p in left_out if args.filter in p.relative_to(root).as_posix()]
    if not keep:
        raise SuiteError(
            f"{args.suite_dir}: no .pkt script that runs over {VARIANT_NAMES[args.ip_version]}"
            + (f" matching {args.filter!r}" if args.filter else ""),
            2,
        )
    binary = None
    if args.packetdrill:
        b = Path(args.packetdrill).resolve()
        if not b.is_file() or not os.access(b, os.X_OK):
            raise SuiteError(f"--packetdrill {args.packetdrill}: not an executable file", 2)
        binary = str(b)
    return root, keep, left_out, binary


def check_environment(packetdrill: bool) -> None:
    if os.geteuid() != 0:
        raise SuiteError("needs root (each script runs in its own lab of network namespaces)", 3)
    if packetdrill:
        for tool in ("unshare", "ip"):
            if shutil.which(tool) is None:
                raise SuiteError(
                    f"`{tool}` not found: needed to run packetdrill in a "
                    "throw-away network namespace",
                    3,
                )


def main(args: argparse.Namespace) -> int:
    try:
        root, scripts, left_out, binary = prepare(args)
        check_environment(binary is not None)
        shim = build_shim() if binary is not None else None
    except SuiteError as e:
        print(f"netemu bench pkt-suite: {e}", file=sys.stderr)
        return e.status
    keep = Path(args.keep).resolve() if args.keep else None
    argv = variant_argv(args.ip_version)
    names = [p.relative_to(root).as_posix() for p in scripts]
    if left_out:
        only = "IPv4" if args.ip_version == "ipv6" else "IPv6"
        _progress(
            f"left out over {VARIANT_NAMES[args.ip_version]}: {len(left_out)} {only}-only "
            f"script(s), as run_all.py: {', '.join(p.name for p in left_out)}"
        )
    staging = Path(tempfile.mkdtemp(prefix="netemu-pkt-suite-"))
    try:
        tree, fixed = stage(root, staging)
        if fixed:
            _progress(
                f"note: symlinks checked out as text, made links again in the copy: "
                f"{', '.join(fixed)}"
            )
        staged = [tree / n for n in names]
        netemu: list[Verdict] = []
        for i, (name, path) in enumerate(zip(names, staged, strict=True), 1):
            k = keep / "netemu" / name.removesuffix(".pkt") if keep is not None else None
            v = run_netemu(path, argv, args.timeout, k)
            netemu.append(v)
            _progress(
                f"netemu [{i}/{len(names)}] {name}: {v.verdict} ({v.seconds:.2f} s)"
                + (f" {_short(v.reason, 100)}" if v.reason else "")
            )
        packetdrill: list[Verdict] | None = None
        if binary is not None:
            packetdrill = []
            for i, (name, path) in enumerate(zip(names, staged, strict=True), 1):
                k = (
                    keep / "packetdrill" / (name.removesuffix(".pkt") + ".log")
                    if keep is not None
                    else None
                )
                v = run_packetdrill(binary, path, argv, args.timeout, shim, k)
                packetdrill.append(v)
                _progress(
                    f"packetdrill [{i}/{len(names)}] {name}: {v.verdict} "
                    f"({v.seconds:.2f} s)" + (f" {_short(v.reason, 100)}" if v.reason else "")
                )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = summarize(
        names,
        netemu,
        packetdrill,
        args.ip_version,
        [p.relative_to(root).as_posix() for p in left_out],
    )
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "suite.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, excluded=len(left_out)))
    return 0
