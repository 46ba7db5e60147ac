"""Fitting: the likelihood, the parameter space, the optimisers and the compiled fit kernel.

Imports only the model (and the foundations `errors`, `io`).  Modules, one
concept each: likelihood and observables (what chi^2 is), params and
bounds_file (the box the fit lives in), optimize/ (projected LM, batched DE,
starts), problem (residuals on the unit box), kernel (every start of every
point in one compiled call), lanes (the batch sizes its rounds run in),
compiled (a kernel from code to executable), sharding (points over devices), diagnostics
(convergence evidence), fit (the functions users call).
"""
