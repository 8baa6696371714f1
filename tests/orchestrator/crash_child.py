"""Child process for the orchestrator-crash test: submit work, report, wait to be killed.

Usage: python -m tests.orchestrator.crash_child DATA WORKFLOWS JOBS COUNT NODE_URL...
Prints one JSON line per submitted job id, then "ready", then sleeps.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from orchestrator.service import Orchestrator


def main() -> None:
    data, workflows, jobs, count, *nodes = sys.argv[1:]
    orch = Orchestrator(data_dir=Path(data), workflows_dir=Path(workflows), nodes=nodes,
                        watch_workflows=False)
    for _ in range(int(jobs)):
        print(orch.submit("nap", {"seconds": 0.6}, count=int(count)).id, flush=True)
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
