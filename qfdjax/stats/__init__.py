"""Statistics past Wilks: pseudo-experiments over the fit kernels' lanes.

`toys` draws pseudo-data from a fit (or a given truth) and refits every toy as
one more lane of the same compiled kernels: a goodness-of-fit p-value for
chi^2_min, and the coverage of Delta chi^2 intervals measured, not assumed.
Imports the fitting layer (and may import scans); nothing below imports it.
"""
