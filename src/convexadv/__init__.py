"""convexadv: convex standard and adversarial training of one-hidden-layer ReLU networks.

Implements Bai, Gautam, Gai and Sojoudi, "Practical Convex Formulations of
One-hidden-layer Neural Network Adversarial Training": Algorithm 1 (program (8)),
Algorithm 2 (programs (15) and (18) with the robust constraints (11)), weight
recovery (7), Theorem 4's worst case, FGSM / PGD attacks and the GD baselines.

The public names below are imported lazily (PEP 562), so ``import convexadv``
does not pull in torch, cvxpy or scikit-learn until they are used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "attacks": ("accuracy", "evaluate_robustness", "fgsm", "pgd", "pgd_restarts", "squared_error"),
    "torchattacks_adapter": ("AUTOATTACK_ATTACKS", "autoattack", "autoattack_accuracy"),
    "baselines": ("train_gd",),
    "estimators": ("ConvexReLUClassifier", "ConvexReLURegressor"),
    "network": ("ReLUNetwork", "certified_linear_region", "recover_network", "robust_loss_terms",
                "worst_case_perturbation"),
    "patterns": ("NoRobustPatternError", "PatternSummary", "confidence_level", "pattern_summary", "patterns_needed",
                 "sample_patterns"),
    "programs": ("ConvexProgram", "ConvexSolution", "ConvexSolveError", "DegenerateSolutionError"),
    "solvers": ("SOLVERS", "solve_convex", "solve_program"),
    "verify": ("RobustnessResult", "binomial_interval", "exact_robustness"),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'convexadv' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
