"""`qfdjax.sample`: the posterior at one (beta, w), or with beta and w sampled too; files, resume, progress.

Order of work: the multistart fit (its best point starts the chains), the density's mode and its
Laplace whitening, warm-up, then the draws in blocks.  After warm-up and after every block the
chains' state and the draws so far are checkpointed (atomically, with the run's fingerprint);
a rerun with the same settings and --out continues from there and gives the same draws.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..fitting.params import ParameterSpace
from ..model.constants import ETA_DEFAULT
from ..model.profiles import AbstractProfile, BoundaryLayer
from ..model.quadrature import SeedGridSpec
from ..runtime import check_interrupted, spending
from .priors import read_priors
from .sampler import SamplerConfig

CHECKPOINT = "checkpoint.npz"
FILES = ("posterior.json", "posterior.nc", "corner.png", "trace.png")
LIKELIHOOD_TEXT = ("-2 log L = chi2_min(S*) + log sum E^2/sigma^2 [+ log sum x^2/sigma_g^2 with g terms] + const: "
                   "S (and C_g) integrated out analytically under flat priors")


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _start(space, beta, w, free_globals, beta_bounds, w_bounds, fit_kwargs) -> tuple[np.ndarray, dict]:
    """The best fit's natural values of the sampled coordinates (the chains' starting region)."""
    from ..fitting.fit import fit
    from ..fitting.profile_fit import fit_profile

    record: Any
    if free_globals:
        record = fit_profile(beta, w, free_globals, beta_bounds=beta_bounds, w_bounds=w_bounds, space=space,
                             **fit_kwargs)
    else:
        record = fit(beta, w, space=space, **fit_kwargs)
    params = dict(zip(space.names, np.asarray(record["params"], float), strict=True))
    values = [params[n] for n, f in zip(space.names, space.fixed, strict=True) if not f]
    values += [record[g] for g in ("beta", "w") if g in free_globals]
    return np.asarray(values), {"chi2": record["chi2"], "beta": record["beta"], "w": record["w"],
                                "valid": bool(record.get("valid", record.get("converged", False)))}


def sample(beta: float, w: float, *, space: ParameterSpace | None = None, free: Sequence[str] = (),
           beta_bounds=(2.5, 4.5), w_bounds=(0.005, 0.05), eta: float | None = None,
           observables: Sequence[str] = ("mass",), priors: dict | None = None,
           config: SamplerConfig = SamplerConfig(), profile: AbstractProfile = BoundaryLayer(),
           spec: SeedGridSpec = SeedGridSpec(), out=None, progress=None) -> dict:
    """Hamiltonian Monte Carlo on the fit's likelihood; returns the record (and writes FILES under `out`).

    Parameters
    ----------
    beta, w : float
        The point (the start when free).
    space : ParameterSpace, optional
        Bounds (the prior's support), fixed values and shared groups; default the seed's.
    free : sequence of str
        Globals sampled too: "beta", "w" or both, within beta_bounds and w_bounds.
    priors : dict, optional
        The TOML [priors] table: {name: "uniform" | "log-uniform" | {"normal": [mean, sd]}}.
    config : SamplerConfig
        Chains, draws, warm-up, seed, sampler ("chees" or "nuts") and draws per compiled call.

    Returns
    -------
    dict
        Settings, the per-parameter summary with diagnostics and certificate, the starting fit, timings;
        with `out`, the draws as ArviZ netCDF and the corner and trace plots beside it.
    """
    import time

    import jax.numpy as jnp

    from ..fitting.fit import resolve_lambda
    from ..fitting.observables import build_likelihood
    from .posterior import build_posterior, converged_mode, sampled_names, unconstrained, whitening

    t0 = time.perf_counter()
    space = space or ParameterSpace.seed()
    free = tuple(free)
    eta = ETA_DEFAULT if eta is None else eta
    resolve_lambda(beta, None, eta)  # refuses an eta whose lambda leaves its domain, naming eta
    names = sampled_names(space, free)
    lo, _ = space.arrays()
    lowers = list(lo[~space.fixed]) + [{"beta": beta_bounds, "w": w_bounds}[g][0] for g in ("beta", "w") if g in free]
    prior_map = read_priors(priors, names, lowers)
    likelihood = build_likelihood(space.leptons, tuple(observables))
    posterior = build_posterior(space, likelihood, beta, w, eta=eta, priors=prior_map, free_globals=free,
                                beta_bounds=beta_bounds, w_bounds=w_bounds, profile=profile, spec=spec)
    settings = {"beta": beta, "w": w, "free": list(free), "beta_bounds": list(beta_bounds),
                "w_bounds": list(w_bounds), "eta": eta, "observables": list(observables),
                "bounds": space.as_dict(), "shared": space.shared_groups(),
                "priors": {n: dataclasses.asdict(p) for n, p in prior_map.items()},
                "sampler": dataclasses.asdict(config), "profile": type(profile).__name__, "r_max": spec.r_max}
    fingerprint = _fingerprint(settings)
    directory = Path(out) if out is not None else None
    lock = None
    if directory is not None:
        from ..io import safe_mkdir
        from ..scans.checkpoint import hold_directory

        safe_mkdir(directory)
        lock = hold_directory(directory)
    try:
        x_start, start_fit = _start(space, beta, w, free, tuple(beta_bounds), tuple(w_bounds),
                                    dict(eta=eta, observables=tuple(observables), profile=profile, spec=spec))
        # The sampler's jitted calls are counted as device time, their first-call tracing and compiling included.
        with spending("device"):
            mode, log_density_mode, neg_hessian, decrement, mode_found = converged_mode(
                posterior, jnp.asarray(unconstrained(posterior, x_start)))
        L = jnp.asarray(whitening(neg_hessian))
        resumed = _load_checkpoint(directory, fingerprint)
        draws = _run_chains(posterior, mode, L, config, resumed, directory, fingerprint, progress)
        with spending("device"):
            x, chi2, scale = (np.asarray(a) for a in _natural(posterior, mode, L, draws["y"]))
    finally:
        if lock is not None:
            lock.close()
    from .summary import summarize

    summary = summarize(names, x, draws["divergent"])
    where = (f"beta = {beta:g}, w = {w:g}" if not free else
             f"({', '.join(free)}) sampled, start beta = {beta:g}, w = {w:g}")
    record = {"kind": "posterior", "where": where, "names": names, "settings": settings, "fingerprint": fingerprint,
              "sampler": dataclasses.asdict(config), "start_fit": start_fit,
              "mode": {"z": np.asarray(mode).tolist(), "log_density": log_density_mode,
                       "newton_decrement": decrement, "converged": mode_found,
                       "natural": np.asarray(posterior.natural(mode)).tolist()},
              "tuning": draws["tuning"], "summary": summary, "likelihood": LIKELIHOOD_TEXT,
              "prior_text": "; ".join(f"{n}: {p.describe()}" for n, p in prior_map.items()),
              "chi2_draws": {"min": float(chi2.min()), "median": float(np.median(chi2))},
              "S_draws": {"mean": float(scale.mean()), "sd": float(scale.std(ddof=1))},
              "timings": {"sample_s": time.perf_counter() - t0}}
    if directory is not None:
        _write(directory, record, names, x, chi2, draws)
    record["draws"] = x
    return record


def _natural(posterior, mode, L, y):
    """Natural values of the draws, chunked: 64 chains x 10,000 draws stay within memory."""
    from .sampler import natural_draws

    flat = y.reshape(-1, y.shape[-1])
    parts = [natural_draws(posterior, mode, L, flat[i:i + 16384]) for i in range(0, len(flat), 16384)]
    x, chi2, scale = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(3))
    lead = y.shape[:-1]
    return x.reshape(lead + (-1,)), chi2.reshape(lead), scale.reshape(lead)


def _y0(config: SamplerConfig, d: int) -> np.ndarray:
    """Dispersed starts: N(0, 1.5²) in whitened coordinates, i.e. 1.5 Laplace widths around the mode."""
    return 1.5 * np.random.default_rng([config.seed, 7]).standard_normal((config.chains, d))


def _state_arrays(state) -> dict:
    return {f"state_{k}": np.asarray(v) for k, v in state._asdict().items()}


def _restore_state(method: str, arrays: dict):
    import jax.numpy as jnp

    if method == "chees":
        from blackjax.mcmc.dynamic_hmc import DynamicHMCState as State
    else:
        from blackjax.mcmc.hmc import HMCState as State
    return State(**{k: jnp.asarray(arrays[f"state_{k}"]) for k in State._fields})


def _warmup(posterior, mode, L, config: SamplerConfig, key):
    """The chains after warm-up, and the tuned kernel parameters."""
    import jax
    import jax.numpy as jnp

    from . import sampler as hmc

    y0 = jnp.asarray(_y0(config, posterior.size))
    if config.method == "chees":
        state, step, mean_steps, _ = hmc.chees_warmup(posterior, mode, L, y0, key, 0.5, steps=config.warmup,
                                                      max_bits=hmc._max_bits(config))
        return state, {"step_size": np.asarray(step), "mean_steps": np.asarray(mean_steps)}
    keys = jax.random.split(key, config.chains)
    state, step, inverse_mass = hmc.nuts_warmup(posterior, mode, L, y0, keys, steps=config.warmup)
    return state, {"step_size": np.asarray(step), "inverse_mass": np.asarray(inverse_mass)}


def _block(posterior, mode, L, config: SamplerConfig, state, tuning, key, count):
    import jax.numpy as jnp

    from . import sampler as hmc

    step = jnp.asarray(tuning["step_size"])
    if config.method == "chees":
        state, y, divergent, acceptance, logdensity = hmc.chees_block(
            posterior, mode, L, state, key, step, jnp.asarray(tuning["mean_steps"]), draws=count,
            max_bits=hmc._max_bits(config))
        # Every chain takes the same jittered number of leapfrog steps in a transition: none recorded.
        steps = np.zeros(np.shape(divergent), np.int64)
    else:
        state, y, divergent, acceptance, logdensity, steps = hmc.nuts_block(
            posterior, mode, L, state, key, step, jnp.asarray(tuning["inverse_mass"]), draws=count)
    new = {"y": y, "divergent": divergent, "acceptance": acceptance, "logdensity": logdensity, "steps": steps}
    return state, {k: np.asarray(v) for k, v in new.items()}


def _run_chains(posterior, mode, L, config: SamplerConfig, resumed, directory, fingerprint, progress) -> dict[str, Any]:
    import jax

    key = jax.random.key(config.seed)
    if resumed is None:
        # The sampler's jitted calls count as device time, their first call's tracing and compiling included.
        with spending("device"):
            state, tuning = _warmup(posterior, mode, L, config, jax.random.fold_in(key, 0))
        chains, d = config.chains, posterior.size
        done: dict[str, Any] = {"y": np.zeros((chains, 0, d)), "divergent": np.zeros((chains, 0), bool),
                "acceptance": np.zeros((chains, 0)), "logdensity": np.zeros((chains, 0)),
                "steps": np.zeros((chains, 0), np.int64)}
        _save_checkpoint(directory, fingerprint, state, tuning, done, 0)
        first = 0
    else:
        state = _restore_state(config.method, resumed)
        tuning = {k[7:]: resumed[k] for k in resumed if k.startswith("tuning_")}
        done = {k: resumed[f"draws_{k}"] for k in ("y", "divergent", "acceptance", "logdensity", "steps")}
        first = int(resumed["blocks_done"])
    for b in range(first, config.blocks):
        check_interrupted()
        count = min(config.block, config.draws - b * config.block)
        with spending("device"):
            state, new = _block(posterior, mode, L, config, state, tuning, jax.random.fold_in(key, b + 1), count)
        done = {k: np.concatenate([done[k], new[k]], axis=1) for k in done}
        _save_checkpoint(directory, fingerprint, state, tuning, done, b + 1)
        if progress is not None:
            progress(done["y"].shape[1], config.draws)
    done["tuning"] = {k: np.asarray(v).tolist() for k, v in tuning.items()}
    return done


def _save_checkpoint(directory, fingerprint, state, tuning, done, blocks_done) -> None:
    if directory is None:
        return
    from ..io import write_npz

    write_npz(directory / CHECKPOINT, fingerprint=np.array(fingerprint), blocks_done=np.array(blocks_done),
              **_state_arrays(state), **{f"tuning_{k}": np.asarray(v) for k, v in tuning.items()},
              **{f"draws_{k}": v for k, v in done.items()})


def _load_checkpoint(directory, fingerprint):
    """The checkpoint of this very run, or None; another run's checkpoint is refused, never mixed in."""
    if directory is None or not (directory / CHECKPOINT).exists():
        return None
    from ..io import load_npz

    try:
        arrays = load_npz(directory / CHECKPOINT)
    except (OSError, ValueError) as err:
        raise InputError(f"out = {str(directory)!r}: {CHECKPOINT} cannot be read ({err}): remove it to start "
                         f"afresh") from None
    if str(arrays.get("fingerprint")) != fingerprint:
        raise InputError(f"out = {str(directory)!r} holds the checkpoint of a run with other settings: choose "
                         f"another --out, or remove {CHECKPOINT} to start afresh")
    return arrays


def _write(directory: Path, record: dict, names, x, chi2, draws) -> None:
    from ..integrity import write_sealed_json
    from ..io import run_metadata
    from .summary import inference_data, plot_corner, plot_trace

    from ..runtime import with_account

    record |= run_metadata()
    stats = {"diverging": draws["divergent"], "acceptance_rate": draws["acceptance"],
             "lp": draws["logdensity"], "chi2": chi2}
    if np.any(draws["steps"]):
        stats["n_steps"] = draws["steps"]
    netcdf = directory / "posterior.nc"
    with spending("io"):
        idata = inference_data(names, x, stats, {"qfdjax_fingerprint": record["fingerprint"],
                                                 "likelihood": LIKELIHOOD_TEXT})
        tmp = directory / ".posterior.nc.tmp"
        idata.to_netcdf(str(tmp))
        tmp.replace(netcdf)
        title = f"posterior at {record['where']}" + ("" if record["summary"]["certified"] else " (NOT CERTIFIED)")
        plot_corner(names, x, directory / "corner.png", title)
        plot_trace(names, x, directory / "trace.png", title)
    record["timings"] = with_account(record.get("timings"))
    write_sealed_json(directory / "posterior.json", record, posterior_nc=netcdf)
    # The draws are in posterior.nc now; a rerun samples them again, identically (same seed and blocks).
    (directory / CHECKPOINT).unlink(missing_ok=True)
