"""Two source trees served as shipped, measured in interleaved rounds: CPU per request and requests per second.

    git worktree add /tmp/base HEAD        # the tree to compare against
    .venv/bin/python bench/ab.py /tmp/base/src src --scenarios c_refresh,d_code --backend postgresql --rounds 6
    .venv/bin/python bench/ab.py src src --python-b /tmp/other-venv/bin/python   # one tree, two interpreters

``bench/run.py`` compares frontdesk with its peers; this compares frontdesk with itself, for a change whose effect
is smaller than the machine's noise between two runs. Both trees run at once, each a ``frontdesk serve`` as shipped
(default settings, ``INFO``) with its own home and database, pinned to the same core; the rounds take turns, A then
B, then B then A, so that a drift in the machine's load falls on both. Each measurement is ``bench/run.py``'s: a
warm-up, then ``wrk`` for ``--seconds``, the server's CPU read from ``/proc``. A pair is one round's A and B of one
scenario, measured seconds apart: the report gives the medians, how many pairs went B's way, and the median and range
of the pairs' own ratios. Run the same tree as A and B first (``ab.py src src``) to see what the machine's noise
alone gives: on a shared machine two identical trees have differed by 5 % over eight rounds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py: the same set-up, requests and load generator

SIDES = ("A", "B")


def tree_parser(description: str, scenarios: str, rounds: int, seconds: float) -> argparse.ArgumentParser:
    """The arguments of a comparison of two trees, here and in bench/instructions.py."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("a", help="tree A's source directory (PYTHONPATH), e.g. /tmp/base/src")
    parser.add_argument("b", help="tree B's source directory")
    parser.add_argument("--scenarios", default=scenarios, help="comma-separated, of bench/run.py's (not f, g)")
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--seconds", type=float, default=seconds, help=f"measured load per run (default {seconds:g})")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    for side in ("a", "b"):
        parser.add_argument(
            f"--python-{side}", help=f"the interpreter that serves tree {side.upper()} (default: this one)"
        )
    return parser


def scenarios_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    scenarios: list[str] = args.scenarios.split(",")
    unknown = set(scenarios) - set(bench.SHIPPED_SCENARIOS)
    if unknown:
        parser.error(f"not a scenario served as shipped: {', '.join(sorted(unknown))}")
    return scenarios


def main() -> None:
    parser = tree_parser(__doc__.splitlines()[0], "c_refresh", 6, 4.0)
    args = parser.parse_args()
    scenarios = scenarios_of(parser, args)
    settings = argparse.Namespace(
        log_level="INFO", postgres=args.postgres, warmup=1.0, duration=args.seconds, rounds=args.rounds
    )
    names = itertools.count()
    bench.postgres_database = lambda workers, shipped=False: f"fdab_{next(names)}"  # one database per tree

    work = Path(tempfile.mkdtemp(prefix="fdab-"))
    targets: dict[str, bench.FrontdeskTarget] = {}
    try:
        sides = zip(SIDES, (args.a, args.b), (args.python_a, args.python_b), strict=True)
        for side, src, python in sides:
            home = work / side
            home.mkdir()
            target = bench.start_frontdesk(home, args.backend, 1, settings, shipped=True, src=src, python=python)
            target.label = f"{side}: {src}{f' under {python}' if python else ''}"
            targets[side] = target
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for round_ in range(args.rounds):
            order = SIDES if round_ % 2 == 0 else SIDES[::-1]
            for scenario in scenarios:
                for side in order:
                    result = bench.measure(targets[side], scenario, settings, work, 2000)
                    results.setdefault((scenario, side), []).append(result)
                    bench.log(
                        f"round {round_ + 1} {scenario} {side}: {result['rps']:,.0f}/s, "
                        f"{result['cpu_s_per_1k']:.3f} ms CPU a request, {result['ok']} of {result['requests']} ok"
                    )
    finally:
        for target in targets.values():
            if target.process is not None:
                bench.stop(target.process)
    for scenario in scenarios:
        a, b = results[(scenario, "A")], results[(scenario, "B")]
        cpu_a, cpu_b = [r["cpu_s_per_1k"] for r in a], [r["cpu_s_per_1k"] for r in b]
        b_cheaper = sum(y < x for x, y in zip(cpu_a, cpu_b, strict=True))
        # Each pair's own ratio: a drift of the machine between rounds falls on both of a pair, not on the medians.
        ratios = sorted(y / x - 1 for x, y in zip(cpu_a, cpu_b, strict=True))
        print(
            f"{scenario} ({args.backend}): CPU a request, median, A {statistics.median(cpu_a):.3f} ms, "
            f"B {statistics.median(cpu_b):.3f} ms ({statistics.median(cpu_b) / statistics.median(cpu_a) - 1:+.1%}); "
            f"B cheaper in {b_cheaper} of {len(cpu_a)} pairs; B against A by pair, median "
            f"{statistics.median(ratios):+.1%} (from {ratios[0]:+.1%} to {ratios[-1]:+.1%}); req/s, median, "
            f"A {statistics.median(r['rps'] for r in a):,.0f}, B {statistics.median(r['rps'] for r in b):,.0f}"
        )


if __name__ == "__main__":
    main()
