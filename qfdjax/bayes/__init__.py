"""Posteriors on the fit's own likelihood: the box as the prior's support, chains as lanes.

    priors.py       what the TOML may say about priors, parsed (no JAX)
    posterior.py    the log density on the real line (logit box, log-Jacobian, S integrated out)
    sampler.py      BlackJAX HMC, many chains as lanes of one compiled call, with checkpoints
    summary.py      diagnostics, the refusal to print what they cannot support, files and figures

BlackJAX, ArviZ and corner are the `bayes` extra; nothing outside this package imports them.
"""
