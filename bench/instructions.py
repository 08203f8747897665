"""Two source trees served as shipped, compared by the instructions they run a request, counted by callgrind.

    git worktree add /tmp/base HEAD
    .venv/bin/python bench/instructions.py /tmp/base/src src --scenarios a_client_credentials --rounds 3

``bench/ab.py`` measures CPU time, which on a shared virtual machine moves by ±5 % between two runs of the same tree,
so a change worth 1–3 % cannot be seen with it. valgrind's callgrind counts the instructions a process runs, the same
count for the same work whatever the rest of the machine is doing: three runs of one tree's client_credentials gave
844,113, 847,964 and 848,078 instructions a request on the event loop's thread. An instruction is not a unit of time
(the ECDSA signature runs several instructions a cycle, the interpreter fewer, and a cache miss costs none), so a
count says whether a change removed work, and ``ab.py`` how much time that is.

Each tree is a ``frontdesk serve`` as shipped (``bench/run.py``'s set-up) under ``valgrind --tool=callgrind``, counting
off until it is warm. A round counts, for each scenario and tree, one ``wrk`` run of ``--seconds`` at ``--connections``:
counting switched on, the run, counting switched off and the counts written (``callgrind_control``). Reported per
request: the event loop's thread, which on SQLite does all of a request's work, and all threads, which on PostgreSQL
includes the thread pool's share. Threads woken by a clock (the log writer's, the WAL checkpointer's) do their work per
second, and under valgrind's slowdown more of it falls on each request than when served at full speed.
Needs valgrind (Debian's package); a served request runs about 30 times slower under it.
"""

# ruff: noqa: S603, S607  -- a benchmark driver starts its tools by name, with arguments it builds

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import ab  # bench/ab.py: the same arguments
import run as bench  # bench/run.py: the same set-up, requests and load generator

SIDES = ("A", "B")
MAIN_THREAD = "01"  # callgrind's number for the process's first thread, the event loop's


def counts(dump: Path) -> dict[str, int]:
    """Instructions by thread number in the ``dump``-th file set written with ``--separate-threads=yes``."""
    out: dict[str, int] = {}
    for path in dump.parent.glob(f"{dump.name}-*"):
        # A dump's header says "summary: 0" when counting was switched on after start; "totals:" at its end counts.
        found = [
            int(line.split()[1]) for line in path.read_text(errors="replace").splitlines() if line[:7] == "totals:"
        ]
        out[path.name.rsplit("-", 1)[1]] = sum(found)
    return out


class Counted:
    """One tree served under callgrind, counting only between ``on`` and ``written``."""

    def __init__(
        self, side: str, src: str, python: str | None, backend: str, args: argparse.Namespace, work: Path
    ) -> None:
        self.out = work / f"callgrind-{side}"
        wrapper = work / f"python-{side}"
        wrapper.write_text(
            "#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes "
            f'--callgrind-out-file={self.out} {python or sys.executable} "$@"\n'
        )
        wrapper.chmod(0o755)
        home = work / side
        home.mkdir()
        self.target = bench.start_frontdesk(home, backend, 1, args, shipped=True, src=src, python=str(wrapper))
        self.target.label = f"{side}: {src}"
        self.dumps = 0

    def control(self, *flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(self.target.pid)], check=True, capture_output=True)

    def count(self, scenario: str, args: argparse.Namespace, work: Path) -> tuple[int, dict[str, int]]:
        """Requests answered 2xx in one run, and the instructions by thread that the run cost."""
        token = self.target.access_token() if scenario == "b_introspection" else None
        req = bench.request_for(self.target, scenario, token)
        self.control("-i", "on")
        raw = bench.wrk(self.target, req, args.duration, work)
        self.control("-i", "off")
        self.control("-d")
        self.dumps += 1
        answered = sum(n for code, n in raw["statuses"].items() if code.startswith("2"))
        if answered != raw["requests"]:
            raise SystemExit(f"{self.target.label}: {raw['requests'] - answered} of {raw['requests']} not 2xx")
        return answered, counts(Path(f"{self.out}.{self.dumps}"))


def main() -> None:
    parser = ab.tree_parser(__doc__.splitlines()[0], "a_client_credentials", 3, 15.0)
    parser.add_argument("--warmup", type=float, default=8.0, help="load before counting starts (default 8)")
    parser.add_argument("--connections", type=int, default=4, help="wrk's (default 4: few requests cut by a switch)")
    args = parser.parse_args()
    scenarios = ab.scenarios_of(parser, args)
    bench.CONNECTIONS = args.connections
    settings = argparse.Namespace(log_level="INFO", postgres=args.postgres, warmup=0.0, duration=args.seconds)
    names = iter(range(1_000_000))
    bench.postgres_database = lambda workers, shipped=False: f"fdin_{next(names)}"  # one database per tree

    work = Path(tempfile.mkdtemp(prefix="fdinstr-"))
    trees: dict[str, Counted] = {}
    per_request: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for side, src, python in zip(SIDES, (args.a, args.b), (args.python_a, args.python_b), strict=True):
            # One at a time, each warmed before the next starts: start-up is slow under valgrind.
            trees[side] = Counted(side, src, python, args.backend, settings, work)
            for scenario in scenarios:
                token = trees[side].target.access_token() if scenario == "b_introspection" else None
                bench.wrk(trees[side].target, bench.request_for(trees[side].target, scenario, token), args.warmup, work)
        for round_ in range(args.rounds):
            for scenario in scenarios:
                for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
                    answered, by_thread = trees[side].count(scenario, settings, work)
                    loop, every = by_thread.get(MAIN_THREAD, 0) / answered, sum(by_thread.values()) / answered
                    per_request.setdefault((scenario, side), []).append((loop, every))
                    bench.log(
                        f"round {round_ + 1} {scenario} {side}: {answered} requests, {loop:,.0f} instructions a "
                        f"request on the event loop's thread, {every:,.0f} on all"
                    )
    finally:
        for tree in trees.values():
            if tree.target.process is not None:
                bench.stop(tree.target.process)
    for scenario in scenarios:
        a, b = per_request[(scenario, "A")], per_request[(scenario, "B")]
        for i, where in enumerate(("the event loop's thread", "all threads")):
            med_a, med_b = statistics.median(x[i] for x in a), statistics.median(x[i] for x in b)
            spread = max(abs(x[i] / med_a - 1) for x in a)
            print(
                f"{scenario} ({args.backend}), {where}: A {med_a:,.0f}, B {med_b:,.0f} instructions a request, "
                f"median of {len(a)} ({med_b / med_a - 1:+.2%}); A's runs within ±{spread:.2%} of its median"
            )


if __name__ == "__main__":
    main()
