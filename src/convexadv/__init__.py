"""convexadv: convex standard and adversarial training of one-hidden-layer ReLU networks.

Implements Bai, Gautam, Gai and Sojoudi, "Practical Convex Formulations of
One-hidden-layer Neural Network Adversarial Training": Algorithm 1 (program (8)),
Algorithm 2 (programs (15) and (18) with the robust constraints (11)), weight
recovery (7), Theorem 4's worst case, FGSM / PGD attacks and the GD baselines.
"""

from .attacks import accuracy, evaluate_robustness, fgsm, pgd, squared_error
from .baselines import train_gd
from .estimators import ConvexReLUClassifier, ConvexReLURegressor
from .network import (
    ReLUNetwork,
    certified_linear_region,
    recover_network,
    robust_loss_terms,
    worst_case_perturbation,
)
from .patterns import confidence_level, patterns_needed, sample_patterns
from .programs import ConvexProgram, ConvexSolution, ConvexSolveError
from .solvers import SOLVERS, solve_convex, solve_program

__version__ = "0.1.0"

__all__ = [
    "ConvexProgram", "ConvexReLUClassifier", "ConvexReLURegressor", "ConvexSolution", "ConvexSolveError",
    "ReLUNetwork", "SOLVERS", "accuracy", "certified_linear_region", "confidence_level", "evaluate_robustness",
    "fgsm", "patterns_needed", "pgd", "recover_network", "robust_loss_terms", "sample_patterns",
    "solve_convex", "solve_program", "squared_error", "train_gd", "worst_case_perturbation",
]
