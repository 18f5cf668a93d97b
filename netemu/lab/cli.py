"""``netemu lab …``: list live labs, clean what dead runs left, hold a lab open.

``register(subparsers)`` adds the ``lab`` command to netemu's argparse parser;
everything heavier than argparse is imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import time


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    lab = subparsers.add_parser(
        "lab",
        help="inspect, clean up or hold open lab namespaces",
        description="Labs are network namespaces netemu makes per run (see docs/lab.md).",
    )
    sub = lab.add_subparsers(dest="lab_command", metavar="ACTION")

    def show_help(args: argparse.Namespace) -> int:
        lab.print_help()
        return 2

    lab.set_defaults(func=show_help)

    p = sub.add_parser("list", help="live labs, and what dead runs left behind")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("clean", help="remove what dead runs left (never touches a live run)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("up", help="start a lab and hold it until Ctrl-C / SIGTERM")
    p.add_argument(
        "--keep",
        action="store_true",
        help="name the namespaces netemu-<run>-emu/-peer (ip netns) and leave them "
        "after exit, for `netemu lab clean`",
    )
    p.add_argument(
        "--sysctl",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a sysctl for the peer namespace (repeatable)",
    )
    p.add_argument("--congestion", metavar="ALGO", help="peer congestion control (e.g. cubic)")
    p.add_argument("--agent", action="store_true", help="start a kernel agent echo server on 7")
    p.add_argument(
        "--go",
        action="append",
        default=[],
        metavar="PROGRAM",
        help="start a built-in Go peer (hello, echo)",
    )
    p.add_argument("--json", action="store_true", help="print the lab's description as JSON")
    p.set_defaults(func=cmd_up)
    return lab


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def cmd_list(args: argparse.Namespace) -> int:
    from . import registry

    runs = registry.list_runs()
    names = registry.netns_names()
    links = registry.host_links()
    if args.json:
        print(
            json.dumps(
                {
                    "runs": [{"runid": r.runid, "live": r.live, **r.info} for r in runs],
                    "netns_names": names,
                    "host_links": [n for _, n in links],
                },
                indent=2,
                sort_keys=True,
            )
        )
        return 0
    if not runs and not names and not links:
        print("no labs")
        return 0
    now = time.time()
    for r in runs:
        state = "live" if r.live else "kept" if r.kept else "dead"
        age = _age(now - r.info["started"]) if "started" in r.info else "?"
        print(
            f"{r.runid}  {state:<4}  pid {r.pid or '?'}  age {age}  "
            f"emu {r.info.get('emu_ip', '?')}  peer {r.info.get('peer_ip', '?')}"
        )
        if r.info.get("children"):
            print(f"    children: {' '.join(map(str, r.info['children']))}")
        for n in r.info.get("names") or []:
            print(f"    ip netns exec {n} …")
        if r.live and not r.info.get("names"):
            for role, ns in (r.info.get("netns") or {}).items():
                if isinstance(ns, dict) and "fd" in ns:
                    print(f"    {role}: nsenter --net=/proc/{r.pid}/fd/{ns['fd']} …")
    stray = [n for n in names if n.split("-")[1] not in {r.runid for r in runs if r.live}]
    for n in stray:
        print(f"name without a live run: {n} (netemu lab clean removes it)")
    for _, n in links:
        print(f"link in this namespace: {n} (netemu lab clean removes it)")
    if any(not r.live for r in runs):
        print("dead runs: `netemu lab clean` removes what they left")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from . import registry

    actions = registry.clean(dry_run=args.dry_run)
    for a in actions:
        print(("would " if args.dry_run else "") + a)
    if not actions:
        print("nothing to clean")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    import signal as _signal

    from .core import Lab

    sysctls = {}
    for item in args.sysctl:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--sysctl wants NAME=VALUE, got {item!r}")
        sysctls[name.strip()] = value.strip()
    with Lab(peer_sysctls=sysctls, congestion=args.congestion, keep=args.keep) as lab:
        if args.agent:
            lab.start_agent().echo(7)
        for prog in args.go:
            lab.start_go(prog)
        info = lab.describe()
        if args.json:
            print(json.dumps(info, sort_keys=True), flush=True)
        else:
            print(
                f"lab {lab.runid} up in {info['up_ms']} ms: emulator {lab.emu_ip} "
                f"({lab.emu_mac}, no kernel address), peer {lab.peer_ip} ({lab.peer_mac})"
            )
            for role, cmd in info["enter"].items():
                print(f"  {role}: {cmd} …")
            for name in lab.netns_names.values():
                print(f"  ip netns exec {name} …")
            for note in lab.notes:
                print(f"  note: {note}")
            print("Ctrl-C or SIGTERM tears it down.", flush=True)
        try:
            while True:
                _signal.pause()
        except KeyboardInterrupt:
            pass
    return 0
