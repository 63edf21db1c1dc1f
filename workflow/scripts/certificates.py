"""One row per convex solve: solver, status, objective, lower bound, relative gap, max violation, time."""

import pandas as pd
from _common import done, read_json, start

from convexadv.io import atomic_path

log = start(snakemake)
rows = []
for path in snakemake.input.certificates:
    cert = read_json(path)
    cert.pop("info", None)
    rows.append({"path": path.rsplit("/", 1)[0], **cert})
table = pd.DataFrame(rows)
log.info("certificates:\n%s", table.to_string(index=False))
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
done(log, snakemake.output)
