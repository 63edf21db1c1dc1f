"""Stage 1: the standardised regression data set for the squared loss (convexadv.data)."""

from _common import done, start

from convexadv.data import load_regression

log = start(snakemake)
p = snakemake.params
train, test = load_regression(p.dataset, test_fraction=p.test_fraction, seed=p.seed)
log.info("%s: train X %s, test X %s", p.dataset, train.X.shape, test.X.shape)
train.save(snakemake.output.train)
test.save(snakemake.output.test)
done(log, snakemake.output)
