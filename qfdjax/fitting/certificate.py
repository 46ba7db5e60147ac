"""The convergence certificate's thresholds and the reasons a fit can fail it (no JAX: read by reports).

A fit is certified when the optimiser stopped on its own criterion, the EDM -- the chi^2 a
Newton step on the parameters that can move would still gain (`spectra.newton_decrement`) --
is at most EDM_CERTIFY x max(chi^2, 1), at least two starts agree within AGREEMENT_DCHI2 (or chi^2
is below its data's rounding floor, `Likelihood.chi2_rounding_floor`: an exact fit, which no start can
undercut), and chi^2, S* and the energies are finite.  `diagnostics.summarize_points` applies it.
"""

# Two fits agree when their chi^2 differ by at most this (the criterion).
AGREEMENT_DCHI2 = 0.1
# Why the EDM and not the projected gradient: the optima have stiff directions (Hessian eigenvalues
# ~1e15 in the unit box) where rounding alone leaves gradients of ~1e-6 chi^2; near chi^2 ~ 1 that sat
# at the old 1e-4 threshold and called 115 of 1,000 correct toy fits uncertified.  The EDM of those
# fits is <= 2e-18 of chi^2 (seed toys), of every certified scan point <= 1e-16 (the committed
# experiments' configurations): the threshold leaves seven decades of margin either way.
EDM_CERTIFY = 1e-9
# Kept as evidence in the records (relative to chi^2, unit box); no longer a criterion.
PROJECTED_GRADIENT_CERTIFY = 1e-4
# Why a fit is not certified, first failing criterion first (0: certified).
UNCERTIFIED_REASONS = ("certified", "non-finite result", "optimiser not stopped", "not stationary (EDM)",
                       "starts disagree")

# Below this a chi^2 is the rounding of an exact fit (fits to exact pseudo-data end anywhere in 1e-25..1e-17,
# and move there with any change of summation order): reports and figures say "0 to rounding" instead of
# printing digits that no run reproduces.  The levels anyone reads (Delta chi^2 = 1, 4, 9) are nine orders above.
EXACT_CHI2 = 1e-9


def is_exact_chi2(value: float) -> bool:
    """Whether a chi^2 is an exact fit's rounding (even a negative one): zero, not a number to print."""
    return abs(value) < EXACT_CHI2


def chi2_text(value: float, spec: str = ".6g") -> str:
    """A chi^2 for a report or a label: rounding noise (even a negative one) is said to be zero, not printed."""
    return "0 to rounding" if is_exact_chi2(value) else format(value, spec)
