"""Where the service's CPU time per trivial job goes: py-spy or yappi on each path of bench_cost.

    .venv/bin/pip install py-spy   # not a dependency of the project; only this script uses it
    .venv/bin/python bench/profile_cost.py [--jobs 300] [--paths gateway,rest,v2,python]
                                           [--out DIR]

One real ComfyUI node and ``comfy-orch serve`` over it, as in ``bench_cost.py``. For each
path, ``--jobs`` trivial jobs run one after another while py-spy samples the service's
process (for ``python``, this process: the caller and the in-process service) at 250 Hz,
counting only threads that are on a CPU. Written to ``--out``: py-spy's collapsed stacks
per path (``<path>.txt``, for a flame graph tool) and a summary printed here: the share of
samples under each of a few landmark functions, and the functions with the most samples
of their own. ``docs/performance.md`` reads these.

py-spy ``--gil`` sees only Python holding the interpreter lock: SQLite, socket calls and
hashing release it and are missed. ``--yappi`` (``pip install yappi``) instead runs the
service in this process (uvicorn on a thread over the in-process Orchestrator) and charges
each function the CPU time of its thread (``CLOCK_THREAD_CPUTIME_ID``), C and kernel time
included; its own overhead inflates pure-Python calls, so read its shares, not its totals.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_cost import ClientProcess, Setup, block, phase, start_nodes  # noqa: E402
from orchestrator.provision.releases import DEFAULT_VERSION  # noqa: E402
from orchestrator.provision.server import LocalComfy  # noqa: E402
from orchestrator.service import Orchestrator  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.tokens import TokenStore  # noqa: E402
from orchestrator.web import ServerThread, create_app  # noqa: E402

RATE_HZ = 250
TOP = 25
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str:
    found = shutil.which("py-spy") or Path(sys.executable).with_name("py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return str(found)


def profile_path(setup: Setup, path: str, jobs: int, seed: int, out: Path) -> Path:
    """Run ``jobs`` jobs on ``path`` with py-spy recording; returns the collapsed stacks."""
    pid = os.getpid() if path == "python" else setup.service_pid
    target = out / f"{path}.txt"
    spy = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--rate", str(RATE_HZ),
                            "--format", "raw", "--output", str(target), "--nonblocking", "--gil"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    tally = block(setup, path, jobs, seed)
    spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
    spy.wait(timeout=60)
    print(f"\n== {path}: {tally.jobs} jobs, service CPU {tally.service_per_job() * 1000:.2f} "
          f"ms/job, ComfyUI {tally.comfy_per_job() * 1000:.2f} ms/job")
    return target


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/orchestrator/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


def summarize(stacks: Path, jobs: int) -> None:
    """Inclusive share of landmark frames and the functions with most self samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in frames_text.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        print("no samples (is py-spy allowed to read the process?)")
        return
    per_job_ms = 1000 / RATE_HZ / jobs
    print(f"{total} samples = {total * per_job_ms:.2f} ms of CPU per job (sampled)")
    print("inclusive (functions of the project and the libraries it leans on):")
    for name, count in inclusive.most_common(400)[:TOP * 3]:
        if name.startswith(("<module>", "run (threading", "_bootstrap")):
            continue
        print(f"  {count * per_job_ms:6.2f} ms/job {100 * count / total:5.1f}%  {name}")
    print("self:")
    for name, count in own.most_common(TOP):
        print(f"  {count * per_job_ms:6.2f} ms/job {100 * count / total:5.1f}%  {name}")


def yappi_paths(setup: Setup, paths: list[str], jobs: int, seed: int) -> None:
    """Each path under yappi's CPU clock, every thread of this process counted."""
    import yappi  # only this mode needs it

    yappi.set_clock_type("cpu")
    for offset, path in enumerate(paths):
        block(setup, path, 10, seed + offset * 100_000)  # warm-up
        yappi.clear_stats()
        yappi.start(builtins=False, profile_threads=True)
        tally = block(setup, path, jobs, seed + offset * 100_000 + 1000)
        yappi.stop()
        print(f"\n== {path} (yappi, CPU clock): {tally.jobs} jobs, this process "
              f"{tally.service_per_job() * 1000:.2f} ms/job under the profiler")
        threads = sorted(yappi.get_thread_stats(), key=lambda t: -t.ttot)
        print("threads (CPU per job under the profiler): " + ", ".join(
            f"{t.name}/{t.id} {t.ttot * 1000 / jobs:.2f}" for t in threads if t.ttot > 0))
        stats = yappi.get_func_stats()
        rows = [(stat.ttot, stat.tsub, stat.ncall, frame_name(f"{stat.name} ({stat.module})"))
                for stat in stats]
        store = sorted((row for row, stat in zip(rows, stats, strict=True)
                        if "/orchestrator/store/" in stat.module and row[2] >= jobs / 2),
                       key=lambda r: -r[2])
        print("store calls per job: " + ", ".join(f"{r[3].split(' ')[0]} {r[2] / jobs:.1f}"
                                                  for r in store))
        for title, key in (("inclusive", 0), ("self", 1)):
            print(f"{title}:")
            for row in sorted(rows, key=lambda r: -r[key])[:TOP * (3 if key == 0 else 1)]:
                print(f"  {row[key] * 1000 / jobs:6.2f} ms/job  {row[2] / jobs:6.1f} calls/job  "
                      f"{row[3]}")


@contextlib.contextmanager
def in_process(node: LocalComfy, workdir: Path) -> Iterator[Setup]:
    """The service on a thread of this process, over the in-process Orchestrator."""
    settings = Settings(data_dir=workdir / "inproc", workflows_dir=workdir / "workflows", port=0)
    settings.workflows_folder.mkdir(parents=True)
    with TokenStore.open(settings.data_dir) as tokens, Orchestrator(
            data_dir=settings.data_dir, workflows_dir=settings.workflows_folder,
            nodes=[node.url]) as orch, ServerThread(create_app(orch, tokens, settings)) as server:
        token = tokens.create("bench")
        clients = ClientProcess({"nodes": [node.url.removeprefix("http://")],
                                 "service": server.url, "token": token})
        try:
            yield Setup(server.url, token, os.getpid(), [node.pid or 0], clients, orch)
        finally:
            clients.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--paths", default="gateway,rest,v2,python")
    parser.add_argument("--comfyui", default=DEFAULT_VERSION)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--yappi", action="store_true",
                        help="the service in this process under yappi's CPU clock")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-cost-") as tmp:
        workdir = Path(tmp)
        out = args.out or workdir / "stacks"
        out.mkdir(parents=True, exist_ok=True)
        [node] = start_nodes(args.comfyui, 1, workdir)
        try:
            if args.yappi:
                with in_process(node, workdir) as setup:
                    yappi_paths(setup, args.paths.split(","), args.jobs,
                                int(time.time()) % 1000 * 10_000)
                return
            with phase([node], workdir, lift=False) as setup:
                seed = int(time.time()) % 1000 * 10_000
                for offset, path in enumerate(args.paths.split(",")):
                    block(setup, path, 10, seed + offset * 100_000)  # warm-up
                    stacks = profile_path(setup, path, args.jobs,
                                          seed + offset * 100_000 + 1000, out)
                    summarize(stacks, args.jobs)
        finally:
            node.stop()


if __name__ == "__main__":
    main()
