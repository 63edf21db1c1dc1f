"""Stage 2: activation patterns D_i: Algorithm 1 (eps = 0), Algorithm 2 with the paper's sampler or the
robust-feasible one (eps > 0), or the all-active pattern alone (the ROBUST LINEAR control).

Beside the patterns it records how many are usable (their robust cone (11) is not {0}, proved by the exact
presolve, and they are not all-inactive) and how many of those split the data (not all-active):
convexadv.patterns.pattern_summary."""

import numpy as np
from _common import done, start

from convexadv.data import Dataset
from convexadv.io import atomic_savez
from convexadv.patterns import confidence_level, pattern_summary, sample_patterns

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
if p.sampler == "all-active":
    patterns = np.ones((train.X.shape[0], 1), dtype=bool)
else:
    # the pattern stream is seeded apart from the data subset drawn with the same seed
    rng = np.random.default_rng([p.seed, 2])
    patterns = sample_patterns(train.X, p.n_patterns, eps=p.eps, n_perturbations=p.n_perturbations, bias=p.bias,
                               rng=rng, sampler=p.sampler, y=train.y)
n, P = patterns.shape
summary = pattern_summary(train.X, patterns, eps=p.eps, bias=p.bias)
log.info("%s sampler, eps = %g: %d distinct patterns for n = %d (asked %d); Theorem 2 confidence psi*xi = %.3f; "
         "usable under (11): %d, of which %d split the data (not all-active)", p.sampler, p.eps, P, n, p.n_patterns,
         confidence_level(n, P), summary.n_usable, summary.n_splitting)
atomic_savez(snakemake.output[0], patterns=patterns, n_usable=np.int64(summary.n_usable),
             n_splitting=np.int64(summary.n_splitting))
done(log, snakemake.output)
