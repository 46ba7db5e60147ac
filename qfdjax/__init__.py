"""qfdjax: differentiable fits of the QFD lepton vortex model in JAX.

The package is layered, and imports only run downward:

    model/      the physics: constants, profiles, flow, quadrature, numerics, energy
    reference/  the seed's NumPy/SciPy method (oracle and CPU baseline), beside the model
    fitting/    likelihood, observables, parameter space, optimisers, the fit kernel
    scans/      (beta, w) scans, checkpoints, analysis, plots, text reports
    stats/      pseudo-experiments over the fit kernels' lanes (goodness of fit, coverage)
    bayes/      posteriors by HMC on the same likelihood, chains as lanes (the `bayes` extra)
    cli/, evaluate, bench, sensitivity   commands and studies on top

`errors`, `io`, `runtime` and `integrity` are the foundations every layer may use;
they import only one another (`io` and `errors` count their file time through
`runtime`'s wall-time split, `integrity` writes with `io`).

The public names below are loaded on first use rather than at import: `import
qfdjax` then costs no JAX import, so commands that only read saved results
(`qfdjax report`) start in a fraction of a second.  float64 and the persistent
compile cache are still guaranteed (see runtime.py): through JAX's environment
variables if JAX is imported later, through `jax.config` if it came first.
"""

from .runtime import configure_jax as _configure_jax

_configure_jax()

__version__ = "0.1.0"

_PUBLIC = {
    # model
    "GOLDEN_LOOP_BETA": "model.constants",
    "LEPTONS": "model.constants",
    "MASSES_MEV": "model.constants",
    "lambda_from_eta": "model.constants",
    "Energies": "model.types",
    "lepton_energies": "model.energy",
    "AbstractNumerics": "model.numerics",
    "Exact": "model.numerics",
    "Reference": "model.numerics",
    "reference_numerics": "model.numerics",
    "AbstractProfile": "model.profiles",
    "BoundaryLayer": "model.profiles",
    "PowerProfile": "model.profiles",
    "PROFILES": "model.profiles",
    "SeedGridSpec": "model.quadrature",
    "seed_radial_grid": "model.quadrature",
    # fitting
    "AbstractObservable": "fitting.likelihood",
    "Likelihood": "fitting.likelihood",
    "MagneticMoment": "fitting.observables",
    "OBSERVABLES": "fitting.observables",
    "build_likelihood": "fitting.observables",
    "ParameterSpace": "fitting.params",
    "read_bounds": "fitting.bounds_file",
    "FitConfig": "fitting.fit",
    "fit": "fitting.fit",
    "fit_points": "fitting.fit",
    "FitResult": "fitting.result",
    "evaluate_params": "fitting.fit",
    # scans
    "ScanConfig": "scans.config",
    "run_scan": "scans.scan",
    "scan": "scans.scan",
    "ScanResult": "scans.result",
    "merge_scans": "scans.merge",
    "analyse_scan": "scans.analysis",
    "plot_scan": "scans.plots",
    # statistics
    "toys": "stats.toys",
    "ToyConfig": "stats.toys",
    "forecast": "stats.forecast",
    "fc": "stats.fc_report",
    "ToysResult": "stats.toy_output",
    # posteriors
    "sample": "bayes.run",
    "SamplerConfig": "bayes.sampler",
    # saved results
    "load": "saved.load",
    # commands
    "evaluate_cases": "evaluate",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'qfdjax' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"qfdjax.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
