"""PerceptualAETransformer: a perceptual-loss autoencoder as a scikit-learn transformer."""

import os
import sys
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted
from skorch.callbacks import EarlyStopping, ProgressBar

from ..losses.feature_prediction import check_pixel_decoder, pixel_output
from ..losses.networks import SQUASHES
from ..losses.perceptual import PERCEPTUAL_NETS, PixelLoss, check_perceptual_net
from ..models.frozen import FrozenModule
from ..training.callbacks import DivergenceGuard
from ..training.data import ValidationSplit, batch_loader
from ..training.net import AutoencoderNet, TrainingInterrupted, as_dataset
from ._loss_settings import LOSSES, LossSettings
from ._validation import check_device, check_images, resolve_device

#: The values of ``precision`` and ``loss_precision`` (see ``_net.resolve_precision``).
_PRECISIONS = StrOptions({"fp32", "bf16", "fp16", "auto"})


class PerceptualAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Embed images with an autoencoder trained on a pixel or perceptual loss.

    Fits the convolutional (variational) autoencoder of Pihlgren, Sandin and
    Liwicki (2020) and transforms images into the mean of their embedding.
    With ``loss="perceptual"`` the autoencoder learns to reconstruct the
    features a frozen ImageNet network sees, instead of raw pixels, which
    yields embeddings that keep small but important objects.

    Training runs through skorch (Adam, early stopping on a held-out
    validation fraction with the best epoch restored) on CUDA when available.

    Parameters
    ----------
    z_dim : int, default=64
        Size of the embedding, i.e. of ``transform``'s output.
    variational : bool, default=False
        Train a VAE: sample the embedding with the reparameterisation trick
        and add ``kl_weight`` times the KL divergence to N(0, I) to the loss.
        ``transform`` still returns the (deterministic) mean.
    kl_weight : float, default=0.01
        Weight of the KL term (the paper's gamma). Ignored unless
        ``variational``.
    loss : {"perceptual", "pixel", "feature_prediction"}, default="perceptual"
        ``"pixel"``: MSE between input and reconstruction. ``"perceptual"``:
        MSE between ``s(p(x))`` and ``s(p(x_hat))`` for the frozen network
        ``p`` chosen below and the squash ``s``. ``"feature_prediction"``
        (Pihlgren et al., ICPR 2021): the decoder predicts ``p(x)`` itself,
        trained with the MSE to ``s(p(x))``; ``inverse_transform`` then
        needs :meth:`fit_decoder` first.
    perceptual_net : str, default="alexnet"
        torchvision network whose feature stack is ``p``: one of the 14 of
        the follow-up study (:data:`skperceptual.perceptual.PERCEPTUAL_NETS`),
        e.g. ``"alexnet"``, ``"vgg16"``, ``"resnet50"``, ``"efficientnet_b0"``.
    perceptual_layer : int, str or list, default=5
        Where ``p`` is read: an integer cut (how many modules of the feature
        stack to keep), a layer name such as ``"relu2"`` or ``"conv3_3"``
        (:func:`skperceptual.loss_networks.layer_names`), or a list of them
        for a multi-layer loss, computed in one forward pass. AlexNet cut at
        5, ``"relu2"``, stops after its second ReLU, as in the paper.
    perceptual_layer_weights : list of float or None, default=None
        Weights of the layers of a list ``perceptual_layer``: the loss is
        the weighted mean of the per-layer MSEs. None weighs them equally.
    perceptual_squash : {"sigmoid", "none", "unit"}, default="sigmoid"
        Applied to ``p``'s features before comparing them: ``"sigmoid"``
        (the 2020 paper), ``"none"`` (the follow-ups) or ``"unit"``
        (channel-wise unit normalisation, as LPIPS does).
    perceptual_weights : "imagenet", str, path-like or None, default="imagenet"
        ``"imagenet"`` loads torchvision's ImageNet weights (TORCH_HOME cache,
        then download). A path loads a local ``.pth`` state_dict of the full
        torchvision model or of its feature layers, for offline use. None
        leaves ``p`` randomly initialised (tests, ablations).
    perceptual_normalize : bool, default=False
        Standardise images with ImageNet's mean and std before ``p``. The
        paper feeds unnormalised [0, 1] images.
    max_epochs : int, default=50
        Upper bound on training epochs.
    batch_size : int, default=512
        Images per optimisation step, and per batch when transforming.
    lr : float, default=1e-3
        Adam's learning rate.
    validation_fraction : float or None, default=0.2
        Share of the images held out to monitor the validation loss for
        early stopping. 0 or None trains on everything for ``max_epochs``.
    patience : int or None, default=10
        Epochs without validation improvement before training stops; the
        best epoch's weights are then restored. None disables early stopping.
    device : str or torch.device, default="auto"
        Where to train and transform. ``"auto"`` picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split, shuffling and VAE
        sampling. An int makes CPU fits bit-reproducible.
    verbose : int, default=0
        0 is silent; 1 prints skorch's per-epoch log and a progress bar.
    image_shape : tuple of int or None, default=None
        ``(channels, height, width)`` of flat 2-D input. When None, flat
        input is read as square 3-channel images.
    precision : {"fp32", "bf16", "fp16", "auto"}, default="fp32"
        Arithmetic of the forward passes. ``"bf16"`` and ``"fp16"`` use
        mixed precision (:func:`torch.autocast`; weights and optimiser state
        stay float32). bf16 is faster on CPUs with native bf16 and changes
        results by more than float rounding. ``"fp16"`` is meant for CUDA,
        where it also scales the loss to keep small gradients
        representable. ``"auto"`` chooses ``"bf16"`` on CPUs that run it
        natively (AVX512-BF16 or AMX) and ``"fp32"`` elsewhere, CUDA GPUs
        included, whose fp32 convolutions already use the tensor cores
        (TF32); the choice is ``net_.precision_``. Embeddings are always
        returned as float32. The benchmarks page says what each buys.
    loss_precision : {"fp32", "bf16", "fp16", "auto"} or None, default=None
        Arithmetic of the loss network alone (the perceptual and
        feature-prediction losses); None follows ``precision``. With
        ``precision="fp32"``, ``loss_precision="bf16"`` keeps the
        autoencoder, its gradients and its embeddings in float32 and runs
        only the frozen network in bf16, which shortens a perceptual fit on
        CPUs with native bf16. ``"auto"`` picks bf16 on CPUs that run it
        natively. The choice is ``net_.loss_precision_``.
    channels_last : bool, default=True
        Keep the autoencoder, the perceptual network and every batch in the
        channels-last (NHWC) memory format, which oneDNN (CPU) and
        tensor-core GPUs run faster; the results are the same up to float
        rounding.
    callbacks : list of skorch.callbacks.Callback or (name, Callback) or None, default=None
        Extra skorch callbacks for the training loop, run after the
        built-in ones (divergence checks, early stopping, progress bar),
        e.g. :class:`~skperceptual.callbacks.EmbeddingCheckpoints` for a
        learning curve. Instances are used as given, so their fitted state
        is readable after ``fit``. On CUDA with ``verbose=0``, a batch's
        loss in ``net.history`` is a 0-dim device tensor until its training
        or validation pass ends, so that training never waits for the GPU
        between batches (``AutoencoderNet.run_single_epoch`` in
        ``skperceptual.training.net``).

    Attributes
    ----------
    net_ : AutoencoderNet
        The fitted skorch net; ``net_.module_`` is the
        :class:`~skperceptual.models.autoencoder.ConvAutoencoder`.
    n_features_in_ : int
        Number of values per input image, ``C * H * W``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame ``X``; only defined if it had string names.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the images seen in ``fit``.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (if validating)
        and ``dur`` (seconds).
    n_epochs_ : int
        Epochs actually trained.
    fit_time_ : float
        Wall-clock seconds spent training.

    See Also
    --------
    sklearn.decomposition.PCA : A linear embedding, for comparison.

    Notes
    -----
    Images are (n, C, H, W) or flat (n, C*H*W) arrays or tensors, uint8 in
    [0, 255] or floating in [0, 1], with C in {1, 3} (one channel is
    replicated) and H, W in {64, 80, 96, ...}. uint8 input is converted to
    float batch by batch on the device, never as a whole.

    References
    ----------
    G. G. Pihlgren, F. Sandin and M. Liwicki, "Improving Image Autoencoder
    Embeddings with Perceptual Loss", IJCNN 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skperceptual import PerceptualAETransformer
    >>> X = np.random.default_rng(0).integers(0, 256, (8, 3, 64, 64), dtype=np.uint8)
    >>> ae = PerceptualAETransformer(z_dim=4, max_epochs=1, perceptual_weights=None,
    ...                              validation_fraction=None, random_state=0)
    >>> ae.fit_transform(X).shape
    (8, 4)
    """

    _parameter_constraints = {
        "z_dim": [Interval(Integral, 1, None, closed="left")],
        "variational": ["boolean"],
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "loss": [StrOptions(set(LOSSES))],
        "perceptual_net": [StrOptions(set(PERCEPTUAL_NETS))],
        "perceptual_layer": [Interval(Integral, 1, None, closed="left"), str, list, tuple],
        "perceptual_layer_weights": ["array-like", None],
        "perceptual_squash": [StrOptions(set(SQUASHES))],
        "perceptual_weights": [str, os.PathLike, None],
        "perceptual_normalize": ["boolean"],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        # Bounded by what torch and itertools can index with; any batch_size
        # above the number of images trains in a single batch.
        "batch_size": [Interval(Integral, 1, sys.maxsize, closed="both")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "image_shape": [tuple, list, None],
        "precision": [_PRECISIONS],
        "loss_precision": [_PRECISIONS, None],
        "channels_last": ["boolean"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        z_dim=64,
        *,
        variational=False,
        kl_weight=0.01,
        loss="perceptual",
        perceptual_net="alexnet",
        perceptual_layer=5,
        perceptual_layer_weights=None,
        perceptual_squash="sigmoid",
        perceptual_weights="imagenet",
        perceptual_normalize=False,
        max_epochs=50,
        batch_size=512,
        lr=1e-3,
        validation_fraction=0.2,
        patience=10,
        device="auto",
        random_state=None,
        verbose=0,
        image_shape=None,
        precision="fp32",
        loss_precision=None,
        channels_last=True,
        callbacks=None,
    ):
        self.z_dim = z_dim
        self.variational = variational
        self.kl_weight = kl_weight
        self.loss = loss
        self.perceptual_net = perceptual_net
        self.perceptual_layer = perceptual_layer
        self.perceptual_layer_weights = perceptual_layer_weights
        self.perceptual_squash = perceptual_squash
        self.perceptual_weights = perceptual_weights
        self.perceptual_normalize = perceptual_normalize
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.image_shape = image_shape
        self.precision = precision
        self.loss_precision = loss_precision
        self.channels_last = channels_last
        self.callbacks = callbacks

    def _callbacks(self, validating):
        # A diverging fit must fail, not return NaN or exploded embeddings.
        callbacks = [("divergence_guard", DivergenceGuard())]
        if validating and self.patience is not None:
            callbacks.append(
                ("early_stopping", EarlyStopping(patience=self.patience, load_best=True, sink=self._log))
            )
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        # The user's callbacks run after ours, so they see a checked batch.
        for i, callback in enumerate(self.callbacks or ()):
            callbacks.append(callback if isinstance(callback, tuple) else (f"callback_{i}", callback))
        return callbacks

    def _log(self, message):
        if self.verbose:
            print(message)

    def __setstate__(self, state):
        # Estimators pickled before loss_precision existed (e.g. a resumed
        # experiment's saved autoencoders) keep working: None is what they did.
        state.setdefault("loss_precision", None)
        super().__setstate__(state)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on images ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, C*H*W)
            Training images, uint8 in [0, 255] or floating in [0, 1].
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : PerceptualAETransformer
            The fitted transformer.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C during training. Unlike skorch's ``NeuralNet.fit``,
            which ends training quietly and keeps the half-trained net, the
            transformer then keeps its earlier state (unfitted, or its
            previous fit), so that a cut-short fit is never taken for a
            finished one.
        """
        # Every check that needs no data comes first, so that bad parameters
        # fail before the images are validated or the weights are loaded.
        if self.loss != "pixel":
            check_perceptual_net(self.perceptual_net, self.perceptual_layer)
        device = check_device(resolve_device(self.device), self.device)
        images = check_images(self, X, reset=True, image_shape=self.image_shape)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        validating = bool(self.validation_fraction)
        split = ValidationSplit(self.validation_fraction, seed) if validating else None
        n_train = len(images) - (split.n_valid(len(images)) if validating else 0)
        if n_train < 2:
            if validating:
                fix = (
                    f"the validation_fraction={self.validation_fraction} hold-out leaves "
                    f"{n_train}. Pass more images, or validation_fraction=None to train "
                    "on all of them."
                )
            else:
                fix = "pass at least 2 images."
            raise ValueError(
                f"Got {len(images)} image(s); batch normalisation needs at least 2 for "
                f"training, and {fix}"
            )
        loss = LossSettings.from_estimator(self, images.shape[2:])
        module, module_params = loss.module()
        on_cuda = device.startswith("cuda")
        cuda_devices = [torch.device(device)] if on_cuda else []

        # Seeding a forked generator keeps fits reproducible without
        # touching the caller's global torch random state.
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            criterion = loss.criterion()
            net = AutoencoderNet(
                module,
                **module_params,
                module__z_dim=self.z_dim,
                module__image_size=images.shape[2:],
                module__variational=self.variational,
                kl_weight=self.kl_weight,
                precision=self.precision,
                loss_precision=self.loss_precision,
                channels_last=self.channels_last,
                criterion=criterion,
                optimizer=torch.optim.Adam,
                lr=self.lr,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                iterator_train=batch_loader,
                iterator_train__shuffle=True,
                iterator_train__pin_memory=on_cuda,
                iterator_train__prefetch=on_cuda,
                iterator_valid=batch_loader,
                iterator_valid__pin_memory=on_cuda,
                iterator_valid__prefetch=on_cuda,
                train_split=split,
                callbacks=self._callbacks(validating),
                device=device,
                verbose=self.verbose,
            )
            start = time.perf_counter()
            try:
                net.fit(as_dataset(images), y=None)
            except TrainingInterrupted:
                raise KeyboardInterrupt("fit() was interrupted; the transformer keeps its earlier state "
                                        "(unfitted, or the previous fit)") from None
            self.fit_time_ = time.perf_counter() - start
            # Adam's moments serve neither transform nor fit_decoder (which
            # starts a fresh Adam), and no later fit continues from them: a
            # fresh optimizer makes a saved model about three times smaller.
            net.initialize_optimizer()
            # Assigned only once training succeeded: a fit that raised (e.g.
            # diverged) must not leave an estimator that looks fitted.
            self.net_ = net

        keys = ("epoch", "train_loss", "valid_loss", "dur")
        self.history_ = [{k: row[k] for k in keys if k in row} for row in self.net_.history]
        self.n_epochs_ = len(self.history_)
        self.image_shape_ = tuple(images.shape[1:])
        self._flat_input = np.ndim(X) == 2
        self._n_features_out = self.z_dim
        return self

    #: The parts of the module that :meth:`fit_decoder` keeps frozen.
    _ENCODER_PARTS = ("encoder", "fc_mu", "fc_logvar")

    def fit_decoder(self, X, y=None, *, max_epochs=50, lr=1e-3, patience=10, random_state=0):
        """Retrain the decoder alone on pixel MSE, with the encoder frozen.

        This is the paper's Table VIII test of how much pixel information an
        embedding kept: the embedding (``transform``'s output) stays bit for
        bit the one that was evaluated, and only the decoder learns to
        reconstruct pixels from it, from the mean embedding (no sampling, no
        KL term, also for a VAE). Adam starts afresh with ``lr``; the
        validation split and early stopping are those of ``fit``, with
        ``patience``. Afterwards the net trains on its own loss again, so
        ``get_params()`` still describes the encoder. With
        ``loss="feature_prediction"``, whose decoder predicts features, this
        trains the pixel decoder that :meth:`inverse_transform` needs.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, C*H*W)
            Images of the fitted shape, uint8 in [0, 255] or floating in [0, 1],
            usually those ``fit`` saw.
        y : None
            Ignored; present for API consistency.
        max_epochs : int, default=50
            Upper bound on retraining epochs.
        lr : float, default=1e-3
            Adam's learning rate for the decoder.
        patience : int or None, default=10
            Early-stopping patience; applies only if the transformer validates
            (``validation_fraction`` and ``patience`` set).
        random_state : int, RandomState instance or None, default=0
            Seeds the shuffling. An int seeds torch directly, so CPU runs are
            bit-reproducible.

        Returns
        -------
        self : PerceptualAETransformer
            With its decoder retrained.

        Attributes
        ----------
        decoder_history_ : list of dict
            Per retraining epoch: ``epoch``, ``train_loss``, ``valid_loss`` (if
            validating) and ``dur``.
        decoder_loss_ : float
            Pixel MSE of the last retraining epoch (validation loss when
            validating, else training loss).
        decoder_fit_time_ : float
            Wall-clock seconds spent retraining.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C during retraining; the decoder, the history and every
            other attribute are left as they were, as after any error.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).integers(0, 256, (8, 3, 64, 64), dtype=np.uint8)
        >>> ae = PerceptualAETransformer(z_dim=4, max_epochs=1, perceptual_weights=None,
        ...                              validation_fraction=None, random_state=0).fit(X)
        >>> Z = ae.transform(X)
        >>> np.array_equal(ae.fit_decoder(X, max_epochs=1).transform(X), Z)
        True
        """
        check_is_fitted(self)
        images = check_images(self, X, reset=False, image_shape=self.image_shape)
        check_scalar(max_epochs, "max_epochs", Integral, min_val=1)
        check_scalar(lr, "lr", Real, min_val=0, include_boundaries="neither")
        if patience is not None:
            check_scalar(patience, "patience", Integral, min_val=1)
        if len(images) < 2:
            raise ValueError(f"Got {len(images)} images; batch normalisation needs at least 2.")
        if isinstance(random_state, Integral):
            seed = int(random_state)
        else:
            seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

        net, module = self.net_, self.net_.module_
        early_stopping = dict(net.callbacks_).get("early_stopping")
        restore = {"lr": net.lr, "criterion": net.criterion_}
        retrain = {"lr": lr, "criterion": PixelLoss()}
        if early_stopping is not None and patience is not None:
            restore["callbacks__early_stopping__patience"] = early_stopping.patience
            retrain["callbacks__early_stopping__patience"] = patience
        # Restored if retraining fails or is interrupted: the decoder is
        # either retrained in full or left as it was.
        saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
        for name in self._ENCODER_PARTS:
            setattr(module, name, FrozenModule(getattr(module, name)))
        # The decoder learns from the mean embedding, without the KL term.
        variational, module.variational = module.variational, False
        # A new criterion also gives a fresh Adam: the first training's
        # moments belong to another loss.
        net.set_params(**retrain)
        n_before = len(net.history)
        device = resolve_device(self.device)
        finished = False
        try:
            with torch.random.fork_rng(devices=[torch.device(device)] if device.startswith("cuda") else []):
                torch.manual_seed(seed)
                start = time.perf_counter()
                # A feature-prediction module retrains its pixel decoder.
                with pixel_output(module):
                    net.partial_fit(as_dataset(images), y=None, epochs=max_epochs)
                if hasattr(module, "pixel_decoder_fitted"):
                    module.pixel_decoder_fitted = True
                self.decoder_fit_time_ = time.perf_counter() - start
            finished = True
        except TrainingInterrupted:
            raise KeyboardInterrupt("fit_decoder() was interrupted; the decoder is left as it was") from None
        finally:
            for name in self._ENCODER_PARTS:
                setattr(module, name, getattr(module, name).unwrap())
            module.variational = variational
            net.set_params(**restore)
            if not finished:
                module.load_state_dict(saved)
                del net.history[n_before:]
        keys = ("epoch", "train_loss", "valid_loss", "dur")
        self.decoder_history_ = [{k: row[k] for k in keys if k in row} for row in net.history[n_before:]]
        last = self.decoder_history_[-1]
        self.decoder_loss_ = float(last.get("valid_loss", last["train_loss"]))
        return self

    def transform(self, X):
        """Embed images into the mean of their (variational) embedding.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, C*H*W)
            Images of the fitted shape, uint8 in [0, 255] or floating in [0, 1].

        Returns
        -------
        Z : ndarray of shape (n_samples, z_dim), dtype float32
            The embeddings. Deterministic, also for a VAE.
        """
        check_is_fitted(self)
        # Fitted state only (image_shape_, net_): set_params after fit must not
        # change how a fitted transformer reads or embeds images.
        images = check_images(self, X, reset=False)
        return self.net_.encode(as_dataset(images))

    def inverse_transform(self, X):
        """Decode embeddings into images.

        Parameters
        ----------
        X : array-like of shape (n_samples, z_dim)
            Embeddings, e.g. from :meth:`transform`.

        Returns
        -------
        images : ndarray of dtype float32, values in [0, 1]
            Shaped like the ``X`` passed to ``fit``: (n_samples, C, H, W),
            or (n_samples, C*H*W) if ``fit`` was given flat rows. Fitted on
            1-channel images, the decoder's 3 channels are averaged into one.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=np.float32)
        # The fitted embedding size and batch size, not the current
        # parameters, which set_params may have changed since fit.
        z_dim = self._n_features_out
        if Z.shape[1] != z_dim:
            raise ValueError(
                f"X has {Z.shape[1]} features per row, but the embedding was fitted with "
                f"z_dim={z_dim}; pass the output of transform()."
            )
        check_pixel_decoder(self.net_.module_)
        with pixel_output(self.net_.module_):
            images = self.net_.decode(Z, self.net_.batch_size)
        if self.image_shape_[0] == 1:
            images = images.mean(axis=1, keepdims=True)
        return images.reshape(len(images), -1) if self._flat_input else images

    def score(self, X, y=None):
        """Return the negative mean reconstruction loss, so that higher is better.

        The loss is the one trained on (pixel, perceptual or feature
        prediction), without the KL term, decoding the mean embedding. This
        lets ``GridSearchCV`` tune the autoencoder on its own. Compare scores
        only between transformers with the same loss settings (``loss``,
        network, layers, squash and ``loss_precision``).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, C*H*W)
            Images of the fitted shape.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Negative mean reconstruction loss.
        """
        check_is_fitted(self)
        images = check_images(self, X, reset=False)
        return -self.net_.reconstruction_loss(as_dataset(images))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
