"""
============================================================
Reconstructions: pixel vs perceptual, and decoder retraining
============================================================

What do the two kinds of autoencoder draw? A pixel autoencoder is rewarded
for the large areas (sky, ground) and tends to blur away the small lander;
a perceptual autoencoder is rewarded for the features a pretrained network
sees, so it keeps the lander's edges but its colours and brightness may
drift, since it was never asked to reproduce pixels.

To see how much pixel information a perceptual *embedding* holds anyway,
the paper (its Table VIII) freezes the encoder and retrains only the
decoder with pixel MSE. We do the same for both autoencoders and show the
reconstructions before and after. The settings are tiny (64 frames, a few
epochs), so expect blurry pictures; raise them for sharp ones.
"""

# %%

import matplotlib.pyplot as plt
import numpy as np

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander

N_FRAMES = 64
MAX_EPOCHS = 2



data = load_lunarlander(n_rollouts=16, n_steps=24, random_state=0)
X = data.autoencoder.X[np.random.default_rng(0).choice(len(data.autoencoder.X), N_FRAMES, replace=False)]
frames = data.test.X[:: max(1, len(data.test.X) // 4)][:4]

common = dict(z_dim=16, max_epochs=MAX_EPOCHS, batch_size=8, lr=3e-3, validation_fraction=None,
              device="cpu", random_state=0)
autoencoders = {
    "pixel": PerceptualAETransformer(loss="pixel", **common).fit(X),
    "perceptual": PerceptualAETransformer(loss="perceptual", perceptual_weights="imagenet",
                                          **common).fit(X),
}

# %%
# Retraining the decoder with pixel loss
# --------------------------------------
# :func:`skperceptual.protocol.retrain_decoder` freezes the encoder (its
# convolutions and the embedding layers, BatchNorm statistics included) and
# continues training only the decoder with pixel MSE, through skorch's
# ``partial_fit``. The embedding, ``transform``'s output, does not change.
from skperceptual.protocol import retrain_decoder

retrained = {name: retrain_decoder(ae, X, max_epochs=MAX_EPOCHS, random_state=0)
             for name, ae in autoencoders.items()}
for name in autoencoders:
    same = np.allclose(autoencoders[name].transform(frames), retrained[name].transform(frames), atol=1e-5)
    print(f"{name:>10}: embedding unchanged by retraining: {same}")

# %%
# Reconstructions
# ---------------
# Rows: the input frames, then each autoencoder's reconstruction before and
# after its decoder was retrained. The mean absolute pixel error (L1, on the
# 0 to 1 scale) is in each row's label.
rows = {"input": frames / 255.0}
for name in autoencoders:
    for stage, model in (("", autoencoders[name]), (", retrained decoder", retrained[name])):
        rows[f"{name}{stage}"] = model.inverse_transform(model.transform(frames))

fig, axes = plt.subplots(len(rows), len(frames), figsize=(2 * len(frames), 2 * len(rows)))
for r, (label, images) in enumerate(rows.items()):
    l1 = np.abs(images - frames / 255.0).mean()
    for c in range(len(frames)):
        ax = axes[r, c]
        ax.imshow(np.clip(images[c].transpose(1, 2, 0), 0, 1))
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(label if r == 0 else f"{label}\nL1 {l1:.3f}", fontsize=8)
    print(f"{label:>32}: L1 {l1:.3f}")
plt.show()
