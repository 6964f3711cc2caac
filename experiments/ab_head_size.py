"""A/B of the heads' training-set size on LunarLander, with the autoencoder fixed.

Fits one P. AE (z = 64, 6,000 AE frames x 6 epochs, bf16 by default) on a
LunarLander collection, embeds every predictor frame, then fits one MLP head
((128, 64) logistic, the architecture the A/Bs' searches picked most) on
random subsets of growing size, and prints each one's test error on the same
test frames with its 95% bootstrap CI over test rollouts. This is the A/B
behind the cpu profile's choice of giving the heads every predictor frame
(experiments/results/lunarlander-cpu/README.md).

    python experiments/ab_head_size.py --rollouts 600 --sizes 4000 8000 18820 0
"""

import argparse
import json
import time
import warnings

import numpy as np

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander
from skperceptual.protocol import load_profile, search_head
from skperceptual.protocol._runner import prepare_data

#: One candidate: the grid search then only does the protocol's split and refit.
MLP = {"head__regressor__hidden_layer_sizes": [(128, 64)], "head__regressor__activation": ["logistic"],
       "head__regressor__alpha": [1e-4]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rollouts", type=int, default=600)
    p.add_argument("--sizes", type=int, nargs="+", default=[4000, 8000, 18820, 0],
                   help="predictor frames for the head (0 = all)")
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--precision", default="bf16")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    config = load_profile("cpu", data__n_autoencoder=6000, data__n_predictor=0, data__n_test=0)
    data = prepare_data(load_lunarlander(n_rollouts=a.rollouts, n_steps=150, n_jobs=2), config)
    ae = PerceptualAETransformer(z_dim=64, loss="perceptual", max_epochs=6, batch_size=64, precision=a.precision,
                                 validation_fraction=None, device="cpu", random_state=0).fit(data.autoencoder.X)
    Z_pred, Z_test = ae.transform(data.predictor.X), ae.transform(data.test.X)
    pred, test = data.predictor, data.test
    te = np.sort(np.random.default_rng(0).choice(len(Z_test), min(a.n_test, len(Z_test)), replace=False))
    for n in a.sizes:
        n = n or len(Z_pred)
        rows = np.sort(np.random.default_rng(1).choice(len(Z_pred), n, replace=False))
        start = time.perf_counter()
        row, _ = search_head(Z_pred[rows], pred.y[rows], Z_test[te], test.y[te], "positioning", "mlp", config,
                             groups=pred.rollout[rows], test_groups=test.rollout[te], param_grid=MLP)
        print(json.dumps(dict(rollouts=a.rollouts, n_predictor=n, val=round(row["val_metric"], 3),
                              test=round(row["test_metric"], 3),
                              ci=[round(row["test_ci_low"], 2), round(row["test_ci_high"], 2)],
                              seconds=round(time.perf_counter() - start))), flush=True)


if __name__ == "__main__":
    main()
