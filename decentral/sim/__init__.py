"""The host-side event simulator for algorithms that are not lock-step: clocks, stragglers, time-triggered rounds.

:mod:`decentral.sim.events` keeps simulated time and calls an algorithm's jitted per-event steps
(A-EDiT, :func:`decentral.local_sgd.run_a_edit`, runs on it).
"""

from decentral.sim import events
from decentral.sim.events import Event, EventQueue, run_step_triggered, run_time_triggered, step_time_model

__all__ = ['events', 'Event', 'EventQueue', 'run_step_triggered', 'run_time_triggered', 'step_time_model']
