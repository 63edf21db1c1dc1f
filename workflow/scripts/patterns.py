"""Stage 2: sample activation patterns D_i (Algorithm 1 when eps = 0, Algorithm 2 when eps > 0)."""

import numpy as np
from _common import done, start

from convexadv.data import Dataset
from convexadv.io import atomic_savez
from convexadv.patterns import confidence_level, sample_patterns

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
# the pattern stream is seeded apart from the data subset drawn with the same seed
rng = np.random.default_rng([p.seed, 2])
patterns = sample_patterns(train.X, p.n_patterns, eps=p.eps, n_perturbations=p.n_perturbations, bias=p.bias, rng=rng)
n, P = patterns.shape
log.info("Algorithm %d: %d distinct patterns for n = %d (asked %d); Theorem 2 confidence psi*xi = %.3f",
         2 if p.eps > 0 else 1, P, n, p.n_patterns, confidence_level(n, P))
atomic_savez(snakemake.output[0], patterns=patterns)
done(log, snakemake.output)
