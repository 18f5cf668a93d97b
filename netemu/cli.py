"""The `netemu` command line. Imports are lazy: a run pays only for what it uses."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__

# Benchmarks: name -> (module under netemu.bench, one-line description).
BENCHES: dict[str, tuple[str, str]] = {
    "codec": ("codec", "wire codec: parse/build rates for Eth+IPv4+TCP frames, vs scapy"),
    "core": ("core", "TCP stack alone: 10 MiB between in-memory connections, via the codec"),
}


def _bench(args: argparse.Namespace) -> int:
    import importlib

    names = list(BENCHES) if args.which == "all" else [args.which]
    results = {}
    for name in names:
        module = importlib.import_module(f"netemu.bench.{BENCHES[name][0]}")
        result = module.run(quick=args.quick)
        results[name] = result
        if not args.json:
            print(module.render(result))
    if args.json:
        print(json.dumps(results[names[0]] if len(names) == 1 else results, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netemu",
        description="An asyncio network emulator for Linux: script TCP against real peers.",
    )
    parser.add_argument("--version", action="version", version=f"netemu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    bench = sub.add_parser(
        "bench", help="measure speed as ratios against a reference run in the same process",
        description="Benchmarks: " + "; ".join(f"{k}: {v[1]}" for k, v in BENCHES.items()),
    )
    bench.add_argument("which", choices=[*BENCHES, "all"], help="which benchmark (all: every one)")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
