"""A/B of one autoencoder setting on LunarLander, as used to size the cpu profile.

Fits one AE (default: the P. AE at z = 64) on frames subsampled from a
LunarLander collection, embeds the predictor and test frames, tunes the
Ridge and MLP heads as the protocol does, and prints (and appends to
``ab.jsonl``) the test errors with their 95% bootstrap CI over test
rollouts. Compare settings by whether their intervals overlap.

    python experiments/ab_lunarlander.py bf16-6k-x6 --precision bf16 --n-ae 6000 --epochs 6 \\
        --n-pred 4000 --n-test 2000
"""

import argparse
import json
import warnings

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander
from skperceptual.protocol import load_profile, search_head
from skperceptual.protocol._config import VARIANTS
from skperceptual.protocol._runner import prepare_data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="label of this setting in the output")
    p.add_argument("--rollouts", type=int, default=400)
    p.add_argument("--n-ae", type=int, default=6000)
    p.add_argument("--n-pred", type=int, default=3000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--loss-precision", default=None, help="the loss network's precision (default: --precision)")
    p.add_argument("--variant", default="P. AE", choices=list(VARIANTS))
    p.add_argument("--z", type=int, default=64)
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="hold out this fraction of the AE frames for early stopping (default: none)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    p.add_argument("--seed", type=int, default=0, help="the AE's random_state (the data subsets stay fixed)")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    config = load_profile("cpu", data__n_autoencoder=a.n_ae, data__n_predictor=a.n_pred, data__n_test=a.n_test)
    data = prepare_data(load_lunarlander(n_rollouts=a.rollouts, n_steps=150, n_jobs=2), config)
    loss, variational = VARIANTS[a.variant]
    ae = PerceptualAETransformer(z_dim=a.z, loss=loss, variational=variational, max_epochs=a.epochs,
                                 batch_size=a.batch, lr=a.lr, precision=a.precision,
                                 loss_precision=a.loss_precision,
                                 validation_fraction=a.validation_fraction, patience=a.patience,
                                 device="cpu", random_state=a.seed).fit(data.autoencoder.X)
    Z_pred, Z_test = ae.transform(data.predictor.X), ae.transform(data.test.X)
    out = dict(vars(a), fit_time=round(ae.fit_time_, 1), n_epochs=ae.n_epochs_)
    for kind in ("linear", "mlp"):
        row, _ = search_head(Z_pred, data.predictor.y, Z_test, data.test.y, "positioning", kind, config,
                             groups=data.predictor.rollout, test_groups=data.test.rollout)
        out[kind] = dict(val=round(row["val_metric"], 3), test=round(row["test_metric"], 3),
                         ci=[round(row["test_ci_low"], 3), round(row["test_ci_high"], 3)],
                         params=row["best_params"])
    print(json.dumps(out, default=str), flush=True)
    with open("ab.jsonl", "a") as f:
        f.write(json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main()
