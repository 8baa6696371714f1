"""The cost bench's own instruments: what it reads from /proc and the jobs it makes."""

import os
import subprocess
import sys
import time

from bench.bench_cost import graph, own_cpu, p99, tree_cpu


def test_every_job_has_a_colour_and_seed_of_its_own() -> None:
    jobs = [graph(seed)["1"]["inputs"] for seed in range(5000)]
    assert len({job["color"] for job in jobs}) == 5000
    assert len({job["seed"] for job in jobs}) == 5000


def test_tree_cpu_counts_a_busy_child_under_its_root() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nend = time.process_time() + 0.3\n"
                              "while time.process_time() < end: pass\n"
                              "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30  # the spin may wait for a core on a busy machine
        while tree_cpu([child.pid]) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = tree_cpu([child.pid])
        assert spent >= 0.25  # the child's own spin, read from /proc
        assert tree_cpu([os.getpid()]) - own_cpu() >= spent - 0.02  # the root counts its child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_p99_is_the_nearest_rank() -> None:
    assert p99([float(i) for i in range(1, 101)]) == 99.0
    assert p99([3.0]) == 3.0
