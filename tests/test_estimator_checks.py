"""scikit-learn's common estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skperceptual import PerceptualAETransformer

# Every check below fits on scikit-learn's generic tabular data: 1 to 10
# features per row, or 1 to 3 for "images" of side 1. A
# PerceptualAETransformer needs images of at least 3 x 64 x 64, so these fits
# stop at input validation with a (correct) ValueError before the property
# under test is exercised. tests/test_transformer.py checks the same
# properties on real images: pickling, NaN/inf rejection, dtypes, idempotent
# refits, fit returning self, n_features_in_, pipelines.
_NEEDS_IMAGES = "fits on generic tabular X; the estimator needs (n, 3, 64+16k, 64+16k) images"
_GENERIC_DATA_CHECKS = [
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
]


def _expected_failures(estimator):
    return {name: _NEEDS_IMAGES for name in _GENERIC_DATA_CHECKS}


@parametrize_with_checks(
    [PerceptualAETransformer(z_dim=2, max_epochs=1, loss="pixel", validation_fraction=None)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
