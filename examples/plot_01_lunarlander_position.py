"""
=====================================================
Locating the lander: pixel vs perceptual embeddings
=====================================================

The paper's main experiment at toy scale. Two autoencoders, one trained on
pixel MSE and one on the perceptual loss, embed LunarLander frames; a small
MLP head, tuned with :class:`~sklearn.model_selection.GridSearchCV`, then reads
the lander's ``(x, y)`` pixel position from each embedding.

The autoencoders learn from the unlabelled *autoencoder* frames and are then
frozen with :class:`~sklearn.frozen.FrozenEstimator`, so that the grid search
tunes only the head on the labelled *predictor* frames (see
:doc:`/user_guide/pipelines`).

The settings below are tiny, so that the example runs in about a minute on a
CPU: 64 frames and 2 epochs are far too few to reproduce the paper's gap
reliably, so the two errors below may come out either way. Raise
``N_FRAMES``, ``MAX_EPOCHS`` and the number of rollouts for real numbers
(``skperceptual experiment --profile cpu`` does it all).
"""

# %%
# Data and settings
# -----------------
# :func:`~skperceptual.datasets.load_lunarlander` generates frames from a
# random policy (once; they are cached in ``$SKPERCEPTUAL_DATA``). Each part
# has ``X``, uint8 frames ``(n, 3, 64, 64)``, and ``y``, the lander's pixel
# position ``(x, y)``.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander

N_FRAMES = 64  # frames to train each autoencoder on (the paper: 105,000)
MAX_EPOCHS = 2  # the paper: up to 50, with early stopping



data = load_lunarlander(n_rollouts=16, n_steps=24, random_state=0)
rng = np.random.default_rng(0)
X_ae = data.autoencoder.X[rng.choice(len(data.autoencoder.X), N_FRAMES, replace=False)]
X_pred, y_pred = data.predictor.X, data.predictor.y
X_test, y_test = data.test.X, data.test.y
print(f"autoencoder {X_ae.shape}, predictor {X_pred.shape}, test {X_test.shape}")

# %%
# Two autoencoders
# ----------------
# Identical but for ``loss``.
common = dict(z_dim=16, max_epochs=MAX_EPOCHS, batch_size=16, validation_fraction=None,
              device="cpu", random_state=0)
autoencoders = {
    "pixel": PerceptualAETransformer(loss="pixel", **common),
    "perceptual": PerceptualAETransformer(loss="perceptual",
                                          perceptual_weights="imagenet", **common),
}
for name, ae in autoencoders.items():
    ae.fit(X_ae)
    print(f"{name:>10} AE: {ae.n_epochs_} epochs in {ae.fit_time_:.1f} s")

# %%
# Tuned MLP heads on the frozen embeddings
# ----------------------------------------
# The score is the paper's metric, the mean Euclidean distance in pixels
# between predicted and true positions (lower is better).


def mean_distance(y_true, y_hat):
    return float(np.mean(np.linalg.norm(np.asarray(y_true) - y_hat, axis=1)))


scorer = make_scorer(mean_distance, greater_is_better=False)
# The head predicts standardised positions, which MLPs learn more easily.
head = TransformedTargetRegressor(MLPRegressor(hidden_layer_sizes=(64,), max_iter=200, random_state=0),
                                  transformer=StandardScaler(), check_inverse=False)
grid = {"transformedtargetregressor__regressor__alpha": [1e-3, 1e-1]}
warnings.filterwarnings("ignore", category=ConvergenceWarning)  # tiny max_iter
predictions, errors = {}, {}
for name, ae in autoencoders.items():
    model = make_pipeline(FrozenEstimator(ae), StandardScaler(), head)
    search = GridSearchCV(model, grid, scoring=scorer, cv=2).fit(X_pred, y_pred)
    predictions[name] = search.predict(X_test)
    errors[name] = mean_distance(y_test, predictions[name])
    print(f"{name:>10}: best {search.best_params_}, test error {errors[name]:.1f} px")

baseline = mean_distance(y_test, y_pred.mean(axis=0))
print(f"predicting the mean position: {baseline:.1f} px")

# %%
# Side by side
# ------------
# Test frames with the true position (white circle) and each head's
# prediction; on the right, the test errors.
fig, axes = plt.subplots(1, 5, figsize=(13, 3), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.3]})
colors = {"pixel": "tab:orange", "perceptual": "tab:cyan"}
for ax, i in zip(axes[:4], np.linspace(0, len(X_test) - 1, 4).astype(int)):
    ax.imshow(X_test[i].transpose(1, 2, 0))
    ax.scatter(*y_test[i], s=120, facecolors="none", edgecolors="white", label="true")
    for name, color in colors.items():
        ax.scatter(*predictions[name][i], marker="x", color=color, label=name)
    ax.set_axis_off()
axes[0].legend(loc="lower left", fontsize=7)
ax = axes[4]
ax.bar(["mean", "pixel", "perceptual"], [baseline, errors["pixel"], errors["perceptual"]],
       color=["grey", colors["pixel"], colors["perceptual"]])
ax.set_ylabel("test error (pixels)")
ax.set_title("lower is better")
fig.tight_layout()
plt.show()
