"""Instructions per served request: `frontdesk serve` under callgrind, driven by wrk as bench/run.py drives it.

    .venv/bin/python bench/served.py a_client_credentials                 # as shipped (INFO), this tree's code
    .venv/bin/python bench/served.py a_client_credentials --src /tmp/base/src   # another tree's code, to compare

``bench/hotpath.py`` counts the application alone; this counts everything a served request costs the process: the
server's protocol and its socket calls, the application, and the process's background work (the log writer, the
alert evaluator, the WAL checkpointer, the audit batches). Counting starts after a warm-up and stops when ``wrk``
does; the result is every instruction of the process ÷ the requests answered. The machine's load does not move the
count, so two trees can be compared on a busy machine, side by side. What a process does per second is spread over
the ~100 requests a second valgrind serves, so the absolute number is higher than at full speed: compare trees, not
this number with a timed run.
"""

# ruff: noqa: S603, S607  -- runs valgrind, frontdesk and wrk with arguments it builds

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import run as bench  # bench/run.py: the same set-up, request and load generator

SCENARIOS = ("a_client_credentials", "b_introspection", "e_jwks", "e_discovery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--seconds", type=float, default=25.0, help="counted load (default 25)")
    parser.add_argument("--src", help="a source tree whose frontdesk is served instead (PYTHONPATH)")
    parser.add_argument("--log-level", help="frontdesk's log level (default: as shipped, INFO)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fdserved-"))
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env["FRONTDESK_HOME"] = str(home)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    if args.log_level:
        env["FRONTDESK_LOG_LEVEL"] = args.log_level
    bench.provision(env)
    port = bench.free_port()
    counts = work / "callgrind.out"
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={counts}",
        sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with (work / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    target = bench.Target("frontdesk", "frontdesk served", "sqlite", 1, port, {"token": "/token"}, ())
    target.process = process
    target.paths.update(
        {"introspect": "/introspect", "jwks": "/jwks", "discovery": "/.well-known/openid-configuration"}
    )
    try:
        bench.wait_ready(target.url + "/jwks", process, timeout=300)
        token = target.access_token() if args.scenario == "b_introspection" else None
        request = bench.request_for(target, args.scenario, token)
        bench.wrk(target, request, 3, work)  # warm-up, not counted
        subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True)
        result = bench.wrk(target, request, args.seconds, work)
        subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], check=True, capture_output=True)
    finally:
        bench.stop(process)
    total = 0
    for dump in glob.glob(f"{counts}*"):
        for line in Path(dump).read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    answered = result["requests"]
    print(
        f"{args.scenario}: {answered} requests ({result['statuses']}), {total:,} instructions, "
        f"{total / max(answered, 1):,.0f} a request ({args.src or 'this tree'})"
    )


if __name__ == "__main__":
    main()
