"""``python -m vis_pipeline.simulator``: serve a simulated VIS API on loopback."""

from __future__ import annotations

import sys

from vis_pipeline.simulator.serve import main

if __name__ == "__main__":
    sys.exit(main())
