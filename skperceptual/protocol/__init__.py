"""The paper's evaluation protocol as scikit-learn code.

Fit the four autoencoder variants (AE, VAE, P. AE, P. VAE) for each
embedding size, tune prediction heads on their embeddings with
``GridSearchCV`` on an 80/20 split of the predictor set, score them on the
test set, retrain each best decoder with pixel loss (Table VIII), and write
the paper's tables next to the paper's own numbers. Runs are resumable and
their units can be spread over a cluster through joblib.

Examples
--------
>>> from skperceptual.protocol import load_profile, run_protocol  # doctest: +SKIP
>>> config = load_profile("smoke", ae__max_epochs=1)              # doctest: +SKIP
>>> results = run_protocol(my_bunch, config, "runs/mine")          # doctest: +SKIP
"""

from ._config import load_profile
from ._heads import search_head
from ._report import render_report
from ._runner import run_protocol
from ._stages import retrain_decoder  # noqa: F401 - examples/plot_02; prefer fit_decoder

__all__ = ["load_profile", "render_report", "run_protocol", "search_head"]
