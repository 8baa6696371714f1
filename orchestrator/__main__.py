"""``python -m orchestrator`` is ``comfy-orch``."""

import sys

from orchestrator.cli import main

sys.exit(main())
