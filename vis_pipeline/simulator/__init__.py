"""A VIS API simulator: a real HTTP server on loopback with a known ground truth.

It serves the 20 operations of the spec from a seeded, deterministic call history, keeps a
simulated clock (live calls, late arrivals), and misbehaves on demand (throttling, server
errors, slow, truncated or garbage responses, and the spec's open readings of paging and
window edges). Control endpoints under ``/_simulator/`` expose the truth and steer it.
"""

from __future__ import annotations

from vis_pipeline.simulator.behaviour import FAULT_KINDS, Behaviour
from vis_pipeline.simulator.options import SimulatorOptions
from vis_pipeline.simulator.process import SimulatorControl, SimulatorError, SimulatorProcess
from vis_pipeline.simulator.serve import add_arguments, main, options_from_args

__all__ = [
    "FAULT_KINDS",
    "Behaviour",
    "SimulatorControl",
    "SimulatorError",
    "SimulatorOptions",
    "SimulatorProcess",
    "add_arguments",
    "main",
    "options_from_args",
]
