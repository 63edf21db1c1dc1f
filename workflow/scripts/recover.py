"""Stage 4: recover the one-hidden-layer ReLU network from the convex solution by (7).

A solve the certificate marks "degenerate" (its optimum is the zero network) gives a network of width 0,
which every later stage reports as degenerate."""

import numpy as np
from _common import done, read_json, start

from convexadv.network import ReLUNetwork, recover_network
from convexadv.programs import ConvexSolution

log = start(snakemake)
with np.load(snakemake.input.solution) as f:
    solution = ConvexSolution.from_arrays(f)
certificate = read_json(snakemake.input.certificate)
if certificate["status"] == "degenerate":
    network = ReLUNetwork(U=np.zeros((solution.V.shape[0], 0)), alpha=np.zeros(0), bias=solution.bias)
    log.warning("degenerate solve (%s): saving a network of width 0", certificate["degenerate_reason"])
else:
    network = recover_network(solution, tol=snakemake.params.tol)
    log.info("recovered width %d (of 2P = %d columns), regulariser (beta/2)(||U||^2 + ||alpha||^2) = %.6g",
             network.width, 2 * solution.V.shape[1], network.regularizer(solution.beta))
network.save(snakemake.output[0])
done(log, snakemake.output)
