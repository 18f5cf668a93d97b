"""The `netemu` command line: its parser and the commands' entry points (``run`` and
``relay`` in run.py, ``validate`` and the notices of files in files.py). Above every
other layer: the only place that knows both a YAML scenario and a .pkt script.

Imports are lazy: a run pays only for what it uses, and only the sub-parser of the
command given is built (building all of them cost ~14 ms
of every `netemu run`); `netemu`, `netemu -h` and unknown commands get the whole parser."""

from __future__ import annotations

import argparse
import sys

from .. import __version__

# Benchmarks: name -> (module under netemu.bench, one-line description).
BENCHES: dict[str, tuple[str, str]] = {
    "codec": ("codec", "wire codec: parse/build rates for Eth+IPv4+TCP frames, vs scapy"),
    "core": (
        "core",
        "TCP stack alone: 10 MiB between in-memory connections, via the "
        "codec; SACK on/off at 1 % loss in virtual time, by delay",
    ),
    "impair": ("impair", "impairment pipeline at 0 % vs none, netemu→kernel bulk (root)"),
    "concurrent": ("concurrent", "1,000 connections at once to the Go hello server (root, Go)"),
    "wire": ("wire", "on a real veth: netemu⇄kernel bulk vs kernel⇄kernel; lab up/down (root)"),
    "run": (
        "run",
        "start-up: fixed cost of `netemu run` on a trivial scenario, the kernel agent's "
        "start, `netemu validate`, and with --packetdrill PATH a trivial .pkt against "
        "packetdrill (ratio), median wall ms (root)",
    ),
    "pkt": ("pkt", "packetdrill scripts: cost per .pkt beyond its own schedule, vs 200 ms (root)"),
    "sack": (
        "sack",
        "SACK on/off at 1 % loss: netemu in memory next to Linux through the relay (root)",
    ),
    "peer-io": (
        "peer_io",
        "100 MiB read through the kernel agent vs the in-memory TCP core (root)",
    ),
    "ladder": ("ladder", "ladder size and memory for 300 connections, limited vs drawn whole"),
    "show": (
        "show",
        "netemu show on a 200 MB capture it writes, time and peak memory vs tshark's "
        "conv,tcp (tshark)",
    ),
    "pkt-suite": (
        "pkt_suite",
        "packetdrill's suite (DIR): netemu's verdict per .pkt next to "
        "packetdrill's (root; not in all)",
    ),
}


def _bench(args: argparse.Namespace) -> int:
    import importlib

    if args.which == "pkt-suite":
        return importlib.import_module("netemu.bench.pkt_suite").main(args)
    if getattr(args, "suite_dir", None) is not None:
        print(f"netemu bench {args.which}: DIR is pkt-suite's argument", file=sys.stderr)
        return 2
    names = [n for n in BENCHES if n != "pkt-suite"] if args.which == "all" else [args.which]
    if getattr(args, "packetdrill", None) and "run" not in names:
        print(f"netemu bench {args.which}: --packetdrill is for run and pkt-suite", file=sys.stderr)
        return 2
    results = {}
    for name in names:
        module = importlib.import_module(f"netemu.bench.{BENCHES[name][0]}")
        extra = {"packetdrill": args.packetdrill} if name == "run" and args.packetdrill else {}
        result = module.run(quick=args.quick, **extra)
        results[name] = result
        if not args.json:
            print(module.render(result))
    if args.json:
        import json

        print(json.dumps(results[names[0]] if len(names) == 1 else results, indent=2))
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench",
        help="measure speed as ratios against a reference run in the same process",
        description="Benchmarks: " + "; ".join(f"{k}: {v[1]}" for k, v in BENCHES.items()),
    )
    bench.add_argument("which", choices=[*BENCHES, "all"], help="which benchmark (all: every one)")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    from ..bench.pkt_suite import add_arguments as add_suite_arguments

    add_suite_arguments(bench)
    bench.set_defaults(func=_bench)


# packetdrill's command-line options `netemu run` accepts: (name, metavar or "" for a
# flag, help). Those that change nothing in netemu say so.
_SAME = "accepted; changes nothing in netemu"
PKT_OPTIONS: list[tuple[str, str, str]] = [
    (
        "ip_version",
        "V",
        "ipv4 (default), ipv6 (the lab's 2001:2::/64; give --mtu=1520 as packetdrill's "
        "run_all.py does) or ipv4-mapped-ipv6 (AF_INET6 sockets, IPv4 on the wire)",
    ),
    ("local_ip", "IP", "the kernel's address as the script names it (mapped onto the lab's)"),
    ("remote_ip", "IP", "the remote address as the script names it (mapped onto netemu's)"),
    (
        "gateway_ip",
        "IP",
        "the gateway as the script's shell commands name it (mapped onto netemu's)",
    ),
    (
        "netmask_ip",
        "IP",
        "the script's local subnet: its addresses in shell commands map to netemu's (255.255.0.0)",
    ),
    ("mtu", "N", "the MTU of the peer's interface (default 1500)"),
    ("mss", "N", "the MSS of inbound TSO/GRO packets (packetdrill's --mss)"),
    ("tolerance_usecs", "US", "timing tolerance (default 4000)"),
    ("tolerance_percent", "P", "timing tolerance as a share of the gap (default 12.5)"),
    ("tcp_ts_tick_usecs", "US", "check outbound TS val against the clock, this tick"),
    ("tcp_ts_ecr_scaled", "", _SAME),
    ("bind_port", "PORT", "port of bind(..., ...) (default 8080)"),
    ("connect_port", "PORT", "port of connect(..., ...) (default 8080)"),
    ("send_omit_free", "", _SAME),
    ("strict_segments", "", "no TSO run matching: each > packet is one segment"),
    ("init_scripts", "FILES", "comma-separated scripts run in the peer namespace first"),
    ("non_fatal", "LIST", "comma-separated: packet, syscall (failures become notes)"),
    ("dry_run", "", "parse and check only, do not run"),
    ("speed", "N", _SAME),
]


def pkt_argv(args: argparse.Namespace) -> list[str]:
    """The packetdrill command line given to `netemu run`, as packetdrill's argv."""
    out: list[str] = []
    for name, metavar, _text in PKT_OPTIONS:
        v = getattr(args, f"pd_{name}", None)
        if metavar and v is not None:
            out.append(f"--{name}={v}")
        elif not metavar and v:
            out.append(f"--{name}")
    for d in getattr(args, "pd_define", None) or []:
        out += ["-D", d]
    return out


# The impairment options of `netemu run` and `netemu relay`: (name, metavar, help).
IMPAIR_OPTIONS = (
    ("loss", "P", "random loss, e.g. 5%%"),
    ("delay", "T", "one-way delay, e.g. 20ms"),
    ("jitter", "T", "delay variation, e.g. 5ms"),
    ("reorder", "P", "reordered share (needs --delay)"),
    ("duplicate", "P", "duplicated share"),
    ("corrupt", "P", "share with one bit flipped"),
    ("rate", "R", "link rate, e.g. 10mbit"),
)


def _add_impairments(group: argparse._ArgumentGroup) -> None:
    for name, meta, text in IMPAIR_OPTIONS:
        group.add_argument(f"--{name}", metavar=meta, help=text)


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of 1 or more")
    return n


def _add_jobs(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="run up to N files at once, each in its own process and lab, with one "
        "progress display (default 1: one after the other); the same run directories, "
        "verdicts, reports and exit code",
    )


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run scenario files (or directories of them) against real peers in a fresh lab",
        description="Runs each scenario (YAML) or packetdrill script "
        "(.pkt, with packetdrill's verdict) in its own lab and "
        "leaves a run directory: trace.pcap, ladder.txt, "
        "ladder.html, report.json. Exit codes: 0 all passed, 1 a "
        "scenario failed, 2 bad input, 3 environment (not root, "
        "missing tool) or netemu itself late for a .pkt event.",
    )
    run.add_argument("paths", nargs="+", metavar="FILE|DIR")
    run.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="run directory (one scenario) or parent of run directories "
        "(default: runs/<time>-<name>/)",
    )
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    run.add_argument("--json", metavar="FILE", help="write all reports as one JSON file")
    run.add_argument("-q", "--quiet", action="store_true", help="do not print the ladder")
    run.add_argument(
        "--ipv6",
        action="store_true",
        help="run each scenario over IPv6 (its top-level `family: ipv6`: 2001:2::1 ⇄ "
        "2001:2::2, relay mode's peers 2001:2::2 ⇄ 2001:2::3; a 1520-byte link so that MSS "
        "stays 1460) and each .pkt script too (--ip_version=ipv6 --mtu=1520, as "
        "packetdrill's run_all.py); *v4.pkt scripts found in a directory are left out "
        "with a note, named on their own they are refused",
    )
    _add_jobs(run)
    _add_run_pkt(run)
    imp = run.add_argument_group(
        "impairments (both directions; override the scenario's network: block, netem's names)"
    )
    _add_impairments(imp)
    run.set_defaults(func=_run)


def _add_run_pkt(run: argparse.ArgumentParser) -> None:
    """`netemu run`'s options for .pkt scripts: netemu's, then packetdrill's own."""
    pkt = run.add_argument_group("packetdrill scripts (.pkt; docs/packetdrill.md)")
    pkt.add_argument(
        "--lenient-timing",
        action="store_true",
        help="report timing misses as notes instead of failing (packetdrill "
        "fails the script, and so does netemu by default)",
    )
    pkt.add_argument(
        "--strict-timing",
        action="store_true",
        help="fail on timing outside packetdrill's tolerance (the default)",
    )
    pkt.add_argument(
        "--tolerance-usecs",
        type=int,
        metavar="US",
        help="timing tolerance in microseconds (default: the script's "
        "--tolerance_usecs, else 4000)",
    )
    pd = run.add_argument_group(
        "packetdrill's own command line (as run_all.py and ksft_runner.sh pass it; these "
        "overwrite a script's own --option lines, as in packetdrill)"
    )
    for name, metavar, text in PKT_OPTIONS:
        if metavar:
            pd.add_argument(f"--{name}", metavar=metavar, help=text, dest=f"pd_{name}")
        else:
            pd.add_argument(f"--{name}", action="store_true", help=text, dest=f"pd_{name}")
    pd.add_argument(
        "-D",
        "--define",
        action="append",
        metavar="NAME=VALUE",
        dest="pd_define",
        help="every NAME in the script stands for VALUE (e.g. -D TFO_COOKIE=…)",
    )
    pd.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest="pd_verbose",
        help="accepted; netemu's ladder and report are always written",
    )


def _add_validate(sub: argparse._SubParsersAction) -> None:
    validate = sub.add_parser(
        "validate",
        help="check scenario files without running them",
        description="Exit 0 when every file is valid; 2 and one "
        "'file:line:col: message' per error otherwise. A directory stands for its "
        ".yaml/.yml/.pkt files, as for netemu run.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE|DIR")
    validate.add_argument(
        "-D",
        "--define",
        action="append",
        metavar="NAME=VALUE",
        dest="pd_define",
        help="packetdrill scripts: NAME stands for VALUE",
    )
    validate.set_defaults(func=_validate)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    convert = sub.add_parser(
        "convert",
        help="write the YAML scenario equivalent to a packetdrill script (.pkt)",
        description="What YAML cannot express (return values, timing "
        "tolerance, %%{ }%% assertions) stays as comments; "
        "exit 2 with file:line:col on a bad script.",
    )
    convert.add_argument("pkt", metavar="FILE.pkt")
    convert.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    convert.set_defaults(func=_convert)


def _add_schema(sub: argparse._SubParsersAction) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files (for editors)")
    schema.set_defaults(func=_schema)


# `netemu show`'s exit code for a damaged capture drawn as far as it could be read
# (`netemu run` uses 0 to 3).
EXIT_PARTIAL = 4


def _add_show(sub: argparse._SubParsersAction) -> None:
    show = sub.add_parser(
        "show",
        help="draw the ladder diagram of any pcap/pcapng, with TCP states inferred (RFC 9293)",
        description="Draws the ladder of the TCP connections (IPv4 and IPv6) in a pcap or "
        "pcapng file, gzip-compressed or not (a run's trace.pcap, or any capture: "
        "Ethernet with VLAN tags, Linux cooked v1/v2, raw IP, loopback; MPLS, PPPoE, GRE, "
        "VXLAN and Geneve are looked into), with both sides' states inferred from the "
        "packets (RFC 9293) and a run's marks read back from its packet comments; the "
        "frames it does not draw are counted by reason in a footnote. Exit codes: 0 the "
        f"file was read whole; 2 not a capture file, or unreadable; {EXIT_PARTIAL} the file "
        "is damaged (a corrupt block, a record cut off): what comes before the damage is "
        "drawn, and one line on stderr says where it is. docs/trace.md.",
    )
    show.add_argument("pcap", metavar="FILE.pcap")
    show.add_argument(
        "--html",
        metavar="OUT",
        help="also write a self-contained HTML ladder (a large capture goes on in OUT-2.html, …)",
    )
    show.add_argument(
        "--text",
        metavar="OUT",
        help="also write the text ladder to a file, every label whole (as a run's ladder.txt)",
    )
    show.add_argument(
        "--json",
        action="store_true",
        help="print, instead of the ladder, a JSON object in the shape of a run's "
        "report.json: conversations (numbered as tcp.stream), segments, inferred states, "
        "frames, skipped frames by reason, damage",
    )
    show.set_defaults(func=_show)


def _add_relay(sub: argparse._SubParsersAction) -> None:
    relay = sub.add_parser(
        "relay",
        help="bridge two kernel peers through netemu (impair, record) until Ctrl-C",
        description="Relay mode: two labs, a client peer (198.18.0.2) and "
        "a server peer (198.18.0.3), bridged at layer 2 by "
        "netemu, which impairs and records their frames. Start "
        "programs in them with the nsenter commands it prints; "
        "at the end it writes a run directory (trace.pcap, "
        "ladder.txt, ladder.html, report.json).",
    )
    relay.add_argument(
        "--seconds",
        type=float,
        metavar="N",
        help="stop after N seconds (default: at Ctrl-C / SIGTERM)",
    )
    relay.add_argument(
        "-o", "--output", metavar="DIR", help="run directory (default: runs/<time>-relay/)"
    )
    relay.add_argument("--seed", type=int, default=0, help="seed of the impairments")
    relay.add_argument(
        "--ipv6",
        action="store_true",
        help="IPv6 labs: the client is 2001:2::2 and the server 2001:2::3 too (each keeps "
        "its IPv4 address; neighbour discovery crosses netemu as ARP does); the link stays "
        "1500 bytes (IPv6's MSS: 1440)",
    )
    rimp = relay.add_argument_group("impairments (each direction, netem's names)")
    _add_impairments(rimp)
    relay.set_defaults(func=_relay)


def _add_lab(sub: argparse._SubParsersAction) -> None:
    from ..lab.cli import register as register_lab

    register_lab(sub)


# Every command, in the order `netemu -h` lists them.
COMMANDS = {
    "bench": _add_bench,
    "run": _add_run,
    "validate": _add_validate,
    "convert": _add_convert,
    "schema": _add_schema,
    "show": _add_show,
    "relay": _add_relay,
    "lab": _add_lab,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """netemu's parser; with ``command`` (one of COMMANDS), only that sub-parser."""
    parser = argparse.ArgumentParser(
        prog="netemu",
        description="An asyncio network emulator for Linux: script TCP against real peers.",
    )
    parser.add_argument("--version", action="version", version=f"netemu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, add in COMMANDS.items():
        if command is None or name == command:
            add(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    from .files import run_notices
    from .run import run_main

    # issue 17, 8: a file that brings code (a .pkt's shell commands and %{ }% snippets,
    # a scenario's command: peers) says so before it runs; the exit code is the run's.
    for line in run_notices(args.paths, pkt_argv(args)):
        print(line, file=sys.stderr)
    return run_main(args)


def _relay(args: argparse.Namespace) -> int:
    from .run import relay_main

    return relay_main(args)


def _validate(args: argparse.Namespace) -> int:
    from .files import validate_main

    return validate_main(
        args.files,
        pkt_argv=[w for d in args.pd_define or [] for w in ("-D", d)],
        notices=True,
        after_first=lambda: resume_gc(args.gc_enabled),
    )


def resume_gc(enabled: bool) -> None:
    """After a command's imports and first file: what they made is frozen (never walked
    again, nor at interpreter teardown), and collections resume if they were on. Without
    this, `netemu validate` spent ~25 ms of ~170 in collections over pydantic's schemas
    and the interpreter's final walk over them (bench run: ``validate_ms``)."""
    import atexit
    import gc

    gc.freeze()
    if enabled:
        gc.enable()
    atexit.register(gc.freeze)  # once more at exit: what was made since


def _convert(args: argparse.Namespace) -> int:
    from ..pkt import PktError, load_pkt
    from ..pkt.convert import to_yaml

    try:
        text = to_yaml(load_pkt(args.pkt))
    except PktError as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from ..scenario.commands import schema_main

    return schema_main()


def _show(args: argparse.Namespace) -> int:
    from ..trace.infer import show_capture
    from ..trace.pcap import CaptureError

    try:
        shown = show_capture(
            args.pcap, args.html, text_out=args.text, as_json=args.json, out=sys.stdout
        )
    except BrokenPipeError as e:  # `netemu show F | head`: the reader has what it wanted
        from .console import stdout_gone

        stdout_gone(e)  # (stdout pointed at nothing: the flush at exit is quiet)
        return 0
    except (CaptureError, OSError) as e:
        print(f"netemu show: {e}", file=sys.stderr)
        return 2
    if shown.damage:
        sys.stdout.flush()
        print(
            f"netemu show: warning: {args.pcap} is damaged: {shown.damage}; drawn up to there",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return 0


def main(argv: list[str] | None = None) -> int:
    import gc

    # Importing and loading make many objects and no garbage: no collections until the
    # work starts (`netemu run` freezes what the imports made, then collects again).
    enabled = gc.isenabled()
    gc.disable()
    try:
        words = sys.argv[1:] if argv is None else argv
        command = words[0] if words and words[0] in COMMANDS else None
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        # run and validate resume collections themselves, after their imports and
        # loading (resume_gc; run.py's _prepare_gc)
        args.gc_enabled = enabled
        if args.func not in (_run, _validate) and enabled:
            gc.enable()
        return args.func(args)
    except KeyboardInterrupt as e:
        if not getattr(e, "said", False):  # (where a run was, netemu run has said)
            print("netemu: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    finally:
        if enabled:
            gc.enable()


_STATUS: list[int] = []  # main()'s status, once it returned (console_main)


def console_main() -> int:
    """``netemu`` as a program (the console script, ``python -m netemu``): ``main()``,
    then the process ends without the interpreter's teardown of every module and object
    (~6 ms of a trivial `netemu run`, work the OS does anyway; bench run's
    ``pkt_run_ms``): once main() returned, every other exit handler ran, the threads
    were joined (both happen before exit handlers) and the standard streams are flushed,
    ``os._exit`` with main()'s status. Only when this exit handler is the first one
    registered, hence the last one run: one registered before it (coverage measuring
    subprocesses, say) gets the ordinary exit, as does an exception out of main() and a
    flush that fails (a closed pipe: Python says so and exits 120, as it did).
    ``main()`` called from Python (tests, scripts) is unaffected."""
    import atexit

    if getattr(atexit, "_ncallbacks", lambda: 1)() == 0:
        atexit.register(_end_now)
    status = main()
    _STATUS.append(status)
    return status


def _end_now() -> None:
    if not _STATUS:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # (the ordinary exit reports it)
        return
    import os

    os._exit(_STATUS[0])


if __name__ == "__main__":
    sys.exit(console_main())
