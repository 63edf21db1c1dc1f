"""Stage 5: a back-propagation baseline (GD-STD, GD-FGSM or GD-PGD), mini-batch Adam."""

from _common import done, start

from convexadv.baselines import train_gd
from convexadv.data import Dataset

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
network = train_gd(train.X, train.y, method=p.method, loss=p.loss, width=p.width, beta=p.beta, eps=p.eps,
                   bias=p.bias, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, pgd_steps=p.pgd_steps,
                   pgd_step_size=p.pgd_step_size, seed=p.seed, progress=True)
log.info("GD-%s trained: width %d on n = %d", p.method.upper(), network.width, train.X.shape[0])
network.save(snakemake.output[0])
done(log, snakemake.output)
