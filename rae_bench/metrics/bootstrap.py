"""Bootstrap replicates of reconstruction and generation FID over the test items and the samples.

One evaluation gives one FID per column; how far it would move with other test items and other samples
(the sampling noise of the evaluation, not the noise of training) is what a one-seed table needs to say
whether two rows differ. Each replicate draws the N test items with replacement; Rec. FID compares the
reconstructions of the same drawn items with them (the pairs stay together), Gen. FID compares a second
draw of the N samples with them. The replicates go into metrics.json (``fid_rec_boot``, ``fid_gen_boot``)
and feed the agreement intervals (report/agreement.py) and the claims (report/claims.py). Seeded: the same
run gives the same replicates. Resampling with replacement repeats points, which biases FID upwards;
readers use the replicates' spread around the observed FID, not their level (our choice).
"""
from __future__ import annotations

import numpy as np

from .frechet import frechet_distance, gaussian_stats

BOOTSTRAP_SEED = 1000  # mixed with the run's seed: our choice, fixed so that metrics.json is reproducible


def fid_bootstrap(test: np.ndarray, recon: np.ndarray, samples: np.ndarray, replicates: int,
                  seed: int = 0) -> dict[str, list[float]]:
    """``{"fid_rec_boot", "fid_gen_boot"}``: ``replicates`` FIDs each, from N x D features of the test
    items, their reconstructions (row i reconstructs test item i) and the samples."""
    test, recon, samples = (np.asarray(a, dtype=np.float64) for a in (test, recon, samples))
    if len(test) != len(recon):
        raise ValueError(f"fid_bootstrap: {len(test)} test items but {len(recon)} reconstructions (pairs needed)")
    rng = np.random.default_rng([BOOTSTRAP_SEED, int(seed)])
    rec, gen = [], []
    for _ in range(int(replicates)):
        items = rng.integers(0, len(test), len(test))
        ref = gaussian_stats(test[items])
        rec.append(round(frechet_distance(*gaussian_stats(recon[items]), *ref), 6))
        drawn = rng.integers(0, len(samples), len(samples))
        gen.append(round(frechet_distance(*gaussian_stats(samples[drawn]), *ref), 6))
    return {"fid_rec_boot": rec, "fid_gen_boot": gen}
