"""Optimisers on the unit box: projected Levenberg-Marquardt, differential evolution, starts."""

from .de import DEConfig, DEResult, differential_evolution
from .lm import LMConfig, LMResult, LMState, lm_start, lm_steps, projected_levenberg_marquardt, result_at
from .starts import latin_hypercube

__all__ = [
    "DEConfig",
    "DEResult",
    "differential_evolution",
    "LMConfig",
    "LMResult",
    "LMState",
    "lm_start",
    "lm_steps",
    "projected_levenberg_marquardt",
    "result_at",
    "latin_hypercube",
]
