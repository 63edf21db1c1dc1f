"""Shared start-up and end of the pipeline's scripts: logging into snakemake.log, thread count, json helpers."""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import platform
import sys
import time


def _find_package() -> None:
    """Use the installed convexadv, or <repo>/src when it is not installed (an --sdm conda
    environment holds only the dependencies)."""
    if importlib.util.find_spec("convexadv") is None:
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
        sys.path.insert(0, os.path.normpath(src))


_find_package()


def start(snakemake) -> logging.Logger:
    """Send stdout, stderr (tqdm bars, tracebacks), warnings and logging to the job's log file."""
    path = snakemake.log[0]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    stream = open(path, "w", buffering=1)
    # the file descriptors too, so that what compiled libraries write (HiGHS' banner, once per job that
    # imports highspy) goes to the log instead of Snakemake's console
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(stream.fileno(), 1)
    os.dup2(stream.fileno(), 2)
    sys.stdout = sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    log = logging.getLogger("pipeline")
    log.info("rule %s, wildcards %s, threads %d (python %s)", snakemake.rule, dict(snakemake.wildcards.items()),
             snakemake.threads, platform.python_version())
    log.info("params %s", json.dumps(dict(snakemake.params.items()), default=str))
    os.environ.setdefault("OMP_NUM_THREADS", str(snakemake.threads))
    # torch takes 3-4 s to import: set its threads only where the script has imported it (a later
    # import reads OMP_NUM_THREADS)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, int(snakemake.threads)))
    start.t0 = time.perf_counter()
    return log


def done(log: logging.Logger, outputs) -> None:
    """Log the outputs and the job's time; the last call of every script. Then freeze the garbage collector's
    generations: the interpreter's exit would otherwise traverse every object alive (torch's modules: about
    0.4 s of a process that imported torch, 0.7 s of one that ran AutoAttack, measured on the 2-core machine);
    frozen, they are left to the end of the process (open files are flushed and closed by then: the outputs
    were written atomically, and the log is flushed by logging's exit handler)."""
    log.info("wrote %s in %.1fs", ", ".join(map(str, outputs)), time.perf_counter() - start.t0)
    gc.freeze()


def read_json(path):
    with open(path) as fh:
        return json.load(fh)
