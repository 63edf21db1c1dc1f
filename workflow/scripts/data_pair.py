"""Stage 1: one split of the digits pair (scikit-learn's 8x8 digits) or of the user's custom data set."""

from _common import done, start

from convexadv.data import load_custom, load_digits_pair

log = start(snakemake)
p = snakemake.params
loader = dict(p.loader)
load = {"digits": load_digits_pair, "custom": load_custom}[loader.pop("kind")]
data = load(**loader, split=p.split, n_samples=p.n_samples, seed=p.seed)
log.info("%s split: X %s, labels +1: %d, -1: %d, feature range [%.4g, %.4g]", p.split, data.X.shape,
         (data.y > 0).sum(), (data.y < 0).sum(), data.X.min(), data.X.max())
data.save(snakemake.output[0])
done(log, snakemake.output)
