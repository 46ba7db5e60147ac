"""Samplers on the same log density: BlackJAX ChEES and NUTS (qfdjax's lanes) against NumPyro's NUTS.

The target is `qfdjax sample`'s own: the identifiable configuration (mu.U, tau.U free) at
beta = 3.1, w = 0.015, in the whitened coordinates qfdjax samples in, so every sampler sees the
same density and the same starts.  Each is timed twice in one process (the second, warm, run is
reported: compilation excluded), and judged by the smallest bulk ESS over the parameters per
second of wall time.  Run: python benchmarks/sampler_comparison.py --out results/samplers-cpu-2cores.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _target():
    import jax.numpy as jnp

    from qfdjax.bayes.posterior import build_posterior, converged_mode, sampled_names, unconstrained, whitening
    from qfdjax.bayes.priors import read_priors
    from qfdjax.fitting.bounds_file import read_bounds_file
    from qfdjax.fitting.fit import fit
    from qfdjax.fitting.observables import build_likelihood

    space = read_bounds_file(ROOT / "experiments" / "configs" / "identifiable_mu_tau_U.toml")
    names = sampled_names(space)
    lo, _ = space.arrays()
    posterior = build_posterior(space, build_likelihood(space.leptons), 3.1, 0.015, eta=0.03,
                                priors=read_priors({}, names, lo[~space.fixed]))
    best = np.asarray(fit(3.1, 0.015, space=space)["params"])[~space.fixed]
    mode, _, neg_hessian, _, _ = converged_mode(posterior, jnp.asarray(unconstrained(posterior, best)))
    return posterior, mode, jnp.asarray(whitening(neg_hessian)), names


def _min_ess(x: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return float(min(az.ess(x[..., i], method="bulk") for i in range(x.shape[-1])))


def _time(run, repeats: int = 2):
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        elapsed = time.perf_counter() - t0
    return elapsed, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--out")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    from qfdjax.bayes import sampler as hmc

    posterior, mode, L, names = _target()
    y0 = jnp.asarray(1.5 * np.random.default_rng(0).standard_normal((args.chains, len(names))))
    config = hmc.SamplerConfig(chains=args.chains, draws=args.draws, warmup=args.warmup)

    def natural(y):
        return np.asarray(hmc.natural_draws(posterior, mode, L, y)[0])

    def chees():
        states, step, steps, _ = hmc.chees_warmup(posterior, mode, L, y0, jax.random.key(1), 0.5, steps=args.warmup,
                                                  max_bits=hmc._max_bits(config))
        _, y, divergent, _, _ = hmc.chees_block(posterior, mode, L, states, jax.random.key(2), step, steps,
                                                draws=args.draws, max_bits=hmc._max_bits(config))
        jax.block_until_ready(y)
        return y, int(np.sum(divergent)), float(steps)

    def nuts():
        keys = jax.random.split(jax.random.key(1), args.chains)
        states, step, inverse_mass = hmc.nuts_warmup(posterior, mode, L, y0, keys, steps=args.warmup)
        _, y, divergent, _, _, n_steps = hmc.nuts_block(posterior, mode, L, states, jax.random.key(2), step,
                                                         inverse_mass, draws=args.draws)
        jax.block_until_ready(y)
        return y, int(np.sum(divergent)), float(np.mean(n_steps))

    def numpyro_nuts():
        from numpyro.infer import MCMC, NUTS

        log_density = hmc.whitened(posterior, mode, L)
        mcmc = MCMC(NUTS(potential_fn=lambda y: -log_density(y)), num_warmup=args.warmup, num_samples=args.draws,
                    num_chains=args.chains, chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.key(1), init_params=y0, extra_fields=("diverging", "num_steps"))
        y = mcmc.get_samples(group_by_chain=True)
        jax.block_until_ready(y)
        extra = mcmc.get_extra_fields()
        return y, int(np.sum(extra["diverging"])), float(np.mean(extra["num_steps"]))

    rows = []
    for name, run in (("blackjax ChEES (qfdjax default)", chees), ("blackjax NUTS, window adaptation per chain", nuts),
                      ("numpyro NUTS, vectorized chains", numpyro_nuts)):
        wall, (y, divergent, steps) = _time(run)
        ess = _min_ess(natural(np.asarray(y)))
        rows.append({"sampler": name, "warm_wall_s": wall, "min_bulk_ess": ess, "ess_per_s": ess / wall,
                     "divergences": divergent, "mean_leapfrog_steps": steps})
        print(f"{name:<45} warm {wall:7.2f} s  min bulk ESS {ess:8.0f}  ESS/s {ess / wall:8.0f}  "
              f"divergences {divergent}  leapfrog steps/draw {steps:.1f}")
    if args.out:
        meta = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup, "target": "identifiable_mu_tau_U",
                "devices": str(jax.devices()), "versions": {m: __import__(m).__version__ for m in
                                                            ("jax", "blackjax", "numpyro")}}
        pathlib.Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
