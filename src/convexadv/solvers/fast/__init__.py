"""A fast, certified solver for the convex programs (8), (15) and (18): a structured interior-point
method in torch (CPU or GPU), split by concern:

* :mod:`.iteration` — :func:`solve_fast`: presolve, internal units, Mehrotra predictor-corrector, stopping rule;
* :mod:`.structure` — the program's variables, rows and their adjoint;
* :mod:`.newton` — the Newton systems, solved exactly by their structure;
* :mod:`.cones` — second-order-cone algebra and Nesterov-Todd scaling;
* :mod:`.start` — the strictly feasible starting point;
* :mod:`.certificate` — the dual lower bound (the certificate of the returned gap).
"""

from .iteration import internal_units, solve_fast

__all__ = ["internal_units", "solve_fast"]
