"""
=====================================================
Tuning the autoencoder alone with GridSearchCV
=====================================================

Without labels, an autoencoder can still be tuned: its ``score`` is the
negative reconstruction loss on held-out images (higher is better), so
:class:`~sklearn.model_selection.GridSearchCV` can choose, e.g., the
embedding size by cross-validated reconstruction.

Two caveats: scores are comparable only between candidates with the same
``loss`` (and perceptual network and layer), since each defines its own
scale; and a better reconstruction is not always a better embedding for a
downstream task, where a grid over the whole pipeline (example 1) is the
real test. Tiny settings here: 48 frames and 2 epochs per fit.
"""

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander



data = load_lunarlander(n_rollouts=16, n_steps=24, random_state=0)
X = data.autoencoder.X[np.random.default_rng(0).choice(len(data.autoencoder.X), 48, replace=False)]

ae = PerceptualAETransformer(loss="perceptual", perceptual_weights="imagenet",
                             max_epochs=2, batch_size=16, validation_fraction=None,
                             device="cpu", random_state=0)
search = GridSearchCV(ae, {"z_dim": [2, 8, 32]}, cv=2)  # y is not needed
search.fit(X)
print("best:", search.best_params_, f"score {search.best_score_:.5f}")

# %%
# The cross-validated scores
# --------------------------
results = pd.DataFrame(search.cv_results_)
print(results[["param_z_dim", "mean_test_score", "std_test_score", "mean_fit_time"]])

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.errorbar(results["param_z_dim"].astype(int), -results["mean_test_score"],
            yerr=results["std_test_score"], marker="o", capsize=3)
ax.set_xscale("log", base=2)
ax.set_xlabel("z_dim")
ax.set_ylabel("perceptual reconstruction loss\n(held-out fold, lower is better)")
ax.set_title("GridSearchCV over the autoencoder, by score")
fig.tight_layout()
plt.show()
