"""Stage 6b: AutoAttack accuracy and exact robust accuracy (MILP) of a trained network on the test split.

Exact: convexadv.verify.exact_robustness in its robust / not-robust mode (attack, bounds, LP, MILP per point,
at most ``time_limit`` seconds and ``lp_limit`` LP solves each; a point not decided within them is "undecided"
and counted as not robust). With
``exact_points`` set, a fixed random subset of that size (the same for every model) is verified and the 95 %
Wilson interval of the accuracy is reported. AutoAttack: APGD-CE, APGD-T, FAB-T and Square through torchattacks
as a cascade (each attack on the test points the earlier ones left); a point counts as robust only if no attack
breaks it. The exact verification runs first: the points it proves robust (no perturbation in the eps-ball
can break them) count as robust under every attack and are not attacked, which leaves every AutoAttack accuracy
as it is and spares the attacks most of the test points."""

import numpy as np
from _common import done, start

from convexadv.data import Dataset
from convexadv.io import atomic_write_json
from convexadv.network import ReLUNetwork
from convexadv.verify import binomial_interval, exact_robustness

log = start(snakemake)
p = snakemake.params
network = ReLUNetwork.load(snakemake.input.network)
test = Dataset.load(snakemake.input.test)
result = {"eps": p.eps, "n_test": int(test.X.shape[0]), "degenerate": network.width == 0}
if result["degenerate"]:
    log.warning("degenerate model (width 0): not evaluated")
else:
    proven_robust = np.zeros(test.X.shape[0], dtype=bool)
    if p.exact:
        n = test.X.shape[0]
        rows = np.arange(n) if p.exact_points is None or p.exact_points >= n else np.sort(
            np.random.default_rng(0).choice(n, p.exact_points, replace=False))
        verified = exact_robustness(network, test.X[rows], test.y[rows], p.eps, decide_only=True,
                                    time_limit=p.time_limit, lp_limit=p.lp_limit, progress=True)
        summary = verified.summary()
        log.info("exact verification: %s", summary)
        proven_robust[rows] = verified.status == "robust"
        low, high = binomial_interval(int(proven_robust.sum()), rows.size)
        result.update(exact_robust_accuracy=verified.robust_accuracy, exact_points=int(rows.size),
                      exact_undecided=verified.n_undecided, exact_interval_low=low, exact_interval_high=high,
                      exact_settled_by=summary["settled_by"], exact_seconds=summary["seconds"])
    if p.autoattack:
        from convexadv.torchattacks_adapter import autoattack_accuracy  # imports torch (3-4 s): only here

        attacked = autoattack_accuracy(network, test.X, test.y, p.eps, seed=p.seed, n_queries=p.autoattack_queries,
                                       image_shape=None if p.image_shape is None else tuple(p.image_shape),
                                       proven_robust=proven_robust)
        log.info("AutoAttack (%d points proven robust, not attacked): %s", int(proven_robust.sum()), attacked)
        result.update({k: v for k, v in attacked.items() if k != "seconds"},
                      autoattack_seconds=sum(attacked["seconds"].values()))
atomic_write_json(snakemake.output[0], result)
done(log, snakemake.output)
