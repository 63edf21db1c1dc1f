"""Stage 1: one split of the CIFAR-10 class pair, area-downsampled (convexadv.data)."""

from _common import done, start

from convexadv.data import load_cifar_pair

log = start(snakemake)
p = snakemake.params
data = load_cifar_pair(p.root, split=p.split, source=p.source, classes=p.classes, n_samples=p.n_samples,
                       image_size=p.image_size, seed=p.seed)
log.info("%s split from %s (%s): X %s, labels +1: %d, -1: %d, pixel range [%.1f, %.1f]", p.split, p.root, p.source,
         data.X.shape, (data.y > 0).sum(), (data.y < 0).sum(), data.X.min(), data.X.max())
data.save(snakemake.output[0])
done(log, snakemake.output)
