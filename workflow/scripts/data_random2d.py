"""Stage 1: a random 2-D binary data set (sections VII-A, VII-B)."""

from _common import done, start

from convexadv.data import random_2d

log = start(snakemake)
p = snakemake.params
data = random_2d(p.n, seed=p.seed, min_separation=p.min_separation)
log.info("random 2-D set: n = %d, +1: %d, -1: %d", data.X.shape[0], (data.y > 0).sum(), (data.y < 0).sum())
data.save(snakemake.output[0])
done(log, snakemake.output)
