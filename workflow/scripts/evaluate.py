"""Stage 6: clean / FGSM / PGD performance on the test split and the training objective it optimises.

Objective (on the training set, regulariser (beta/2) sum_j (||u_j||^2 + alpha_j^2) included):
* models trained with eps = 0 (Algorithm 1, GD-STD): the clean objective, (13) / (16) with eps = 0;
* adversarially trained models (Algorithm 2, GD-FGSM, GD-PGD): the robust objective (13) / (16) at the
  training eps. Its inner maximum is exact (Theorem 4) on every sample whose eps-box keeps all neurons'
  activations fixed ("certified"); on the others it is estimated by the largest loss found among the
  clean point, Theorem 4's vertex and a PGD attack (gamma = eps / 30), which is a lower bound.
The hinge data term is averaged over n, the squared term summed (as in programs (8), (15), (18)).
"""

import numpy as np
from _common import done, read_json, start

from convexadv.attacks import evaluate_robustness, pgd
from convexadv.data import Dataset
from convexadv.io import atomic_write_json
from convexadv.network import ReLUNetwork, robust_loss_terms, worst_case_perturbation

log = start(snakemake)
p = snakemake.params
network = ReLUNetwork.load(snakemake.input.network)
train = Dataset.load(snakemake.input.train)
test = Dataset.load(snakemake.input.test)


def pointwise_loss(X, y):
    """The hinge or (1/2) squared loss of every sample (the eps = 0 case of robust_loss_terms)."""
    return robust_loss_terms(network, X, y, 0.0, loss=p.loss)[0]


def data_term(terms):
    return float(terms.mean()) if p.loss == "hinge" else float(terms.sum())


result = {"width": network.width, "n_train": int(train.X.shape[0]), "n_test": int(test.X.shape[0]),
          "attack_eps": p.attack_eps, "train_eps": p.train_eps, "attack_steps": p.n_steps,
          "attack_step_size": p.attack_eps / 30 if p.step_size is None else p.step_size}
certificate = getattr(snakemake.input, "certificate", None)
cert = read_json(certificate if isinstance(certificate, str) else certificate[0]) if certificate else None
if cert is not None:
    result.update({"convex_objective": cert["objective"], "convex_lower_bound": cert["lower_bound"],
                   "solver": cert["solver"]})


def evaluate():
    """Clean / FGSM / PGD performance on the test split and the training objective (see the module docstring)."""
    out = evaluate_robustness(network, test.X, test.y, p.attack_eps, step_size=p.step_size, n_steps=p.n_steps,
                              loss=p.loss)
    if p.train_eps == 0:
        terms = pointwise_loss(train.X, train.y)
        certified = np.ones(train.X.shape[0], dtype=bool)
        kind = "clean objective (eps = 0)"
    else:
        exact, certified = robust_loss_terms(network, train.X, train.y, p.train_eps, loss=p.loss)
        X_vertex = train.X + worst_case_perturbation(network, train.X, train.y, p.train_eps, loss=p.loss)
        X_pgd = pgd(network, train.X, train.y, p.train_eps, n_steps=p.n_steps, loss=p.loss)
        found = np.maximum.reduce([pointwise_loss(train.X, train.y), pointwise_loss(X_vertex, train.y),
                                   pointwise_loss(X_pgd, train.y)])
        terms = np.where(certified, exact, found)
        kind = "robust objective: Theorem 4 where certified, else max(clean, Theorem-4 vertex, PGD)"
    regularizer = network.regularizer(p.beta)
    out.update({
        "objective": data_term(terms) + regularizer,
        "objective_data_term": data_term(terms),
        "objective_regularizer": regularizer,
        "objective_kind": kind,
        "certified_fraction": float(certified.mean()),
    })
    return out


result["degenerate"] = network.width == 0
if result["degenerate"]:  # a degenerate solve: reported as such, never as 0 % accuracy
    result["degenerate_reason"] = cert["degenerate_reason"] if cert else "width 0"
    log.warning("degenerate model (%s): not evaluated", result["degenerate_reason"])
else:
    result.update(evaluate())
log.info("evaluation: %s", {k: v for k, v in result.items() if not isinstance(v, str)})
atomic_write_json(snakemake.output[0], result)
done(log, snakemake.output)
