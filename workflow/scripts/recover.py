"""Stage 4: recover the one-hidden-layer ReLU network from the convex solution by (7)."""

import numpy as np
from _common import done, start

from convexadv.network import recover_network
from convexadv.programs import ConvexSolution

log = start(snakemake)
with np.load(snakemake.input.solution) as f:
    solution = ConvexSolution.from_arrays(f)
network = recover_network(solution, tol=snakemake.params.tol)
log.info("recovered width %d (of 2P = %d columns), regulariser (beta/2)(||U||^2 + ||alpha||^2) = %.6g",
         network.width, 2 * solution.V.shape[1], network.regularizer(solution.beta))
network.save(snakemake.output[0])
done(log, snakemake.output)
