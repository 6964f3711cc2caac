"""
=====================================================
Pandas output and feature names in a pipeline
=====================================================

:class:`~skperceptual.PerceptualAETransformer` names its output columns
(``perceptualaetransformer0``, ``perceptualaetransformer1``, ...) through
``get_feature_names_out``, so scikit-learn's ``set_output(transform="pandas")``
turns the embedding into a DataFrame, and every later step of a pipeline sees
those names: no ColumnTransformer needed.

The input can itself be a DataFrame of flat pixel columns; ``image_shape``
says how to fold each row back into a ``(C, H, W)`` image.
"""

# %%

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander



data = load_lunarlander(n_rollouts=16, n_steps=24, random_state=0)
part = data.predictor
X = pd.DataFrame(part.X[:64].reshape(64, -1)).add_prefix("px")  # one row per frame
y = pd.DataFrame(part.y[:64], columns=["x", "y"])
print(X.shape, X.columns[:3].tolist())

# %%
# A pipeline with pandas output
# -----------------------------
model = make_pipeline(
    PerceptualAETransformer(z_dim=8, image_shape=(3, 64, 64), max_epochs=2, batch_size=16,
                            validation_fraction=None, perceptual_weights="imagenet",
                            device="cpu", random_state=0),
    StandardScaler(),
    RidgeCV(alphas=[0.1, 1.0, 10.0]),
).set_output(transform="pandas")
model.fit(X, y)

embedding = model[:-1].transform(X)  # a DataFrame, with the frames' index
print(type(embedding).__name__, embedding.shape)
print(embedding.head(3).round(2))

# %%
# Names all the way down
# ----------------------
# The head knows which embedding dimension each coefficient belongs to.
print(model[-1].feature_names_in_)
print(model.get_feature_names_out() if hasattr(model[-1], "get_feature_names_out") else "")
coefs = pd.DataFrame(model[-1].coef_.T, index=model[-1].feature_names_in_, columns=y.columns)
ax = coefs.plot.bar(figsize=(8, 3.5), rot=45)
ax.set_ylabel("ridge coefficient")
ax.set_title("Which embedding dimensions the position head uses")
ax.figure.tight_layout()
plt.show()
