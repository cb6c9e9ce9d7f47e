"""The host-side event simulator for algorithms that are not lock-step: clocks, stragglers, asynchronous servers.

- :mod:`decentral.sim.events`: simulated time and the event queue; time- and step-triggered rounds (A-EDiT,
  :func:`decentral.local_sgd.run_a_edit`, runs on it).
- :mod:`decentral.sim.clocks`: :class:`Clock`, client task times from a law (fixed, log-normal, shifted
  exponential) with straggler mixtures or bursts, network delay, dropouts and joins; deterministic for a seed.
- :mod:`decentral.sim.server`: a federated server's schedule (sync, async, FedBuff, FedFix) recorded as a
  :class:`Trace` (events, staleness, simulated wall-clock) and replayed exactly with jitted per-event steps.
- :mod:`decentral.sim.gradient_coding`: gradient coding and sequential gradient coding (M-SGC, SR-SGC) against
  stragglers, with exact decoding or a reported failure, and their run time on simulated worker times.
"""

from decentral.sim import clocks, events, gradient_coding, server
from decentral.sim.clocks import Clock, linear_speeds
from decentral.sim.events import Event, EventQueue, run_step_triggered, run_time_triggered, step_time_model
from decentral.sim.gradient_coding import frc_code, gradient_code, m_sgc, sr_sgc
from decentral.sim.server import Step, Trace, replay, simulate

__all__ = ['events', 'Event', 'EventQueue', 'run_step_triggered', 'run_time_triggered', 'step_time_model',
           'clocks', 'Clock', 'linear_speeds', 'server', 'Step', 'Trace', 'replay', 'simulate',
           'gradient_coding', 'frc_code', 'gradient_code', 'm_sgc', 'sr_sgc']
