"""scikit-learn style front door: Algorithms 1 and 2 as estimators.

``eps == 0`` trains by Algorithm 1 (program (8)); ``eps > 0`` by Algorithm 2
(program (15) for the classifier, (18) for the regressor).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .network import recover_network
from .patterns import sample_patterns
from .programs import ConvexProgram
from .solvers import solve_program


class _ConvexReLUBase(BaseEstimator):
    _loss: str

    def __init__(self, n_patterns=36, eps=0.0, beta=1e-4, bias=True, solver="auto",
                 n_perturbations=4, random_state=None, solver_options=None, sampler=None):
        self.n_patterns = n_patterns
        self.eps = eps
        self.beta = beta
        self.bias = bias
        self.solver = solver
        self.n_perturbations = n_perturbations
        self.random_state = random_state
        self.solver_options = solver_options
        self.sampler = sampler

    def _fit_targets(self, X, targets):
        # NoRobustPatternError (no usable pattern) and DegenerateSolutionError (a zero or constant network, or
        # one no better than zero) propagate: a degenerate fit is never returned as a fitted model
        self.patterns_ = sample_patterns(X, self.n_patterns, eps=self.eps, n_perturbations=self.n_perturbations,
                                         bias=self.bias, rng=self.random_state, sampler=self.sampler, y=targets)
        program = ConvexProgram.from_data(X, targets, self.patterns_, loss=self._loss, eps=self.eps,
                                          beta=self.beta, bias=self.bias)
        self.solution_ = solve_program(program, solver=self.solver, **(self.solver_options or {}))
        self.objective_ = self.solution_.objective
        self.network_ = recover_network(self.solution_)
        return self

    def _scores(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.forward(X)


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    """Binary classifier trained by convex (adversarial) training with the hinge loss.

    Parameters: ``n_patterns`` (P_s), ``eps`` (l_inf radius, 0 for standard
    training), ``beta`` (regularisation), ``bias`` (append a never-perturbed
    ones column), ``solver`` ("auto": MOSEK if licensed, else Clarabel; "fast", "clarabel", "scs", "mosek"),
    ``n_perturbations`` (S of Algorithm 2), ``random_state`` (pattern sampling),
    ``solver_options`` (dict passed to the solver), ``sampler`` (``"robust"``, the default for
    eps > 0, or ``"paper"``: see :func:`convexadv.patterns.sample_patterns`).

    ``fit`` raises NoRobustPatternError when no pattern can carry a robust neuron at this eps, and
    DegenerateSolutionError (a ConvexSolveError) when the optimum is (no better than) the zero network
    or a constant one: no degenerate
    model is ever fitted.

    Fitted attributes: ``classes_`` (the label mapped to -1 comes first),
    ``patterns_``, ``solution_``, ``objective_`` (the convex objective, an upper
    bound on the robust training loss (13)), ``network_`` (the recovered ReLUNetwork).
    """

    _loss = "hinge"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.shape[0] != 2:
            raise ValueError(
                "Only binary classification is supported: ConvexReLUClassifier trains on the hinge loss "
                f"with labels -1/+1, but y has {self.classes_.shape[0]} classes"
            )
        return self._fit_targets(X, np.where(y == self.classes_[1], 1.0, -1.0))

    def decision_function(self, X):
        """The network's output; positive means ``classes_[1]``."""
        return self._scores(X)

    def predict(self, X):
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    """Regressor trained by convex (adversarial) training with the squared loss (8) / (18).

    Same parameters and fitted attributes as :class:`ConvexReLUClassifier`.
    """

    _loss = "squared"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        return self._fit_targets(X, y)

    def predict(self, X):
        return self._scores(X)
