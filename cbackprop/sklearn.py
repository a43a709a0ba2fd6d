"""scikit-learn estimators on the compiled engine: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn's MLP parameter names where the meaning is the same, expose its fitted
attributes, and work in pipelines, grid searches and cross-validation. Training runs in
:meth:`cbackprop.Network.train` (compiled, GIL released), so estimators in different threads
train in parallel.

Requires scikit-learn (``pip install "cbackprop[sklearn]"``).

Differences from :mod:`sklearn.neural_network`, all documented on the parameters:

- ``solver`` is ``"sgd"``, ``"adam"`` or ``"rprop"`` (iRprop- on full batches, FANN's
  default algorithm) in place of ``"lbfgs"``;
- ``learning_rate="invscaling"`` and ``"adaptive"`` follow scikit-learn's rules epoch by
  epoch (the learning rate is fixed within an epoch);
- :class:`MLPRegressor`'s loss is ``1/2 ||y - h||^2`` per sample, summed over the outputs
  (scikit-learn's divides by the number of outputs as well); with one output they agree;
- a ``dtype`` parameter picks float32 or float64 computation.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from cbackprop.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=300, random_state=0).fit(X, y)
>>> clf.coefs_[0].shape, clf.out_activation_
((4, 20), 'softmax')
>>> bool(clf.score(X, y) > 0.9)
True
"""

import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                          validate_data)
except ImportError as exc:   # pragma: no cover - exercised only without scikit-learn
    raise ImportError("cbackprop.sklearn needs scikit-learn>=1.6: pip install "
                      "'cbackprop[sklearn]'") from exc

from .network import Network
from .optimizers import SGD, Adam, Rprop
from .train import SCORE_ARGMAX, SCORE_THRESHOLD, accuracy

# scikit-learn's activation names -> cbackprop's
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SOLVERS = ("sgd", "adam", "rprop")
LEARNING_RATES = ("constant", "invscaling", "adaptive")


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, fitting, attributes."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 dtype=np.float64):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype

    # -- parameter checks (scikit-learn's rules where the parameter is theirs) ---------------

    def _check_parameters(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        for s in sizes:
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                                 f"{self.hidden_layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {list(SOLVERS)}, got {self.solver!r}")
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {list(LEARNING_RATES)}, got "
                             f"{self.learning_rate!r}")
        _positive_int(self.max_iter, "max_iter")
        _positive_int(self.n_iter_no_change, "n_iter_no_change")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _positive_int(self.batch_size, "batch_size")
        _real_in(self.alpha, "alpha", 0, np.inf)
        _real_in(self.tol, "tol", 0, np.inf)
        _real_in(self.learning_rate_init, "learning_rate_init", 0, np.inf, low_open=True)
        _real_in(self.power_t, "power_t", 0, np.inf)
        _real_in(self.momentum, "momentum", 0, 1, high_open=False)
        _real_in(self.validation_fraction, "validation_fraction", 0, 1, low_open=True)
        for name in ("beta_1", "beta_2"):
            _real_in(getattr(self, name), name, 0, 1)
        _real_in(self.epsilon, "epsilon", 0, np.inf, low_open=True)
        for name in ("shuffle", "verbose", "warm_start", "nesterovs_momentum",
                     "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        dtype = np.dtype(self.dtype)
        if dtype.type not in (np.float32, np.float64):
            raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {self.dtype!r}")
        return sizes, dtype

    def _optimizer(self):
        if self.solver == "adam":
            return Adam(self.beta_1, self.beta_2, self.epsilon)
        if self.solver == "rprop":
            return Rprop()
        momentum = min(self.momentum, np.nextafter(1.0, 0))   # [0, 1]: 1 is not a momentum
        return SGD(momentum, bool(self.nesterovs_momentum and momentum > 0))

    # -- the network ----------------------------------------------------------------------------

    def _initialize(self, sizes, out_activation, loss, dtype, rng):
        """A new Network, initialised as scikit-learn's MLP is (Glorot uniform weights and
        biases, bound sqrt(6 / (fan_in + fan_out)), sqrt(2 / ...) for logistic layers)."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        weights, biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):       # scikit-learn's draws
            bound = np.sqrt(factor / (fan_in + fan_out))
            weights.append(rng.uniform(-bound, bound, (fan_in, fan_out)).T)
            biases.append(rng.uniform(-bound, bound, fan_out))
        hidden = ACTIVATIONS[self.activation]
        activations = [hidden] * (len(sizes) - 2) + [out_activation]
        net = Network(sizes, activations, loss, dtype=dtype,        # seeds the shuffling
                      seed=int(rng.randint(np.iinfo(np.int32).max)))
        net.weights, net.biases = weights, biases
        self.network_ = net

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        sizes_hidden, dtype = self._check_parameters()
        first = not (hasattr(self, "network_") and (incremental or self.warm_start))
        X, y = validate_data(self, X, y, reset=first, multi_output=True,
                             dtype=(np.float64, np.float32), y_numeric=self._regression)
        Y = self._encode_targets(y, first, incremental, classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        rng = check_random_state(self.random_state)
        sizes = [X.shape[1], *sizes_hidden, Y.shape[1]]
        if first or list(self.network_.sizes) != sizes:
            if not first:
                raise ValueError(f"the data need a network of sizes {sizes}, but the fitted "
                                 f"one has {list(self.network_.sizes)}")
            self._rng = rng
            self._initialize(sizes, self._out_activation(), self._loss(), dtype, rng)
            self.t_ = 0
            self.loss_curve_ = []
            self.best_loss_ = np.inf
            self._no_improvement = 0
            self._lr = float(self.learning_rate_init)
        net = self.network_

        early_stopping = self.early_stopping and not incremental
        X_val = Y_val = sw_val = None
        if early_stopping:
            # stratified for single-label classification, as scikit-learn splits
            single_label = not self._regression and self._label_type != "multilabel"
            extra = [] if sample_weight is None else [sample_weight]
            split = train_test_split(X, Y, *extra,
                                     random_state=self._rng.randint(np.iinfo(np.int32).max),
                                     test_size=self.validation_fraction,
                                     stratify=Y.argmax(axis=1) if single_label and Y.shape[1] > 1
                                     else (Y[:, 0] if single_label else None))
            X, X_val, Y, Y_val = split[:4]
            if sample_weight is not None:
                sample_weight, sw_val = split[4:]
            if X_val.shape[0] < 2:
                raise ValueError("the validation set is too small: raise validation_fraction")
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            best = [None]
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None

        n = X.shape[0]
        self.n_iter_ = 0           # epochs of this call, as scikit-learn counts them
        batch_size = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        if self.solver != "rprop" and self.batch_size != "auto" and self.batch_size > X.shape[0]:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped", UserWarning)
        epochs = 1 if incremental else self.max_iter
        stopped = [False]

        def after_epoch(epoch, history):
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(history.loss[-1])
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {history.loss[-1]:.8f}")
            if incremental:
                self.best_loss_ = min(self.best_loss_, history.loss[-1])
                return False
            if early_stopping:
                score = self._score_encoded(X_val, Y_val, sw_val)
                self.validation_scores_.append(score)
                if score < self.best_validation_score_ + self.tol:
                    self._no_improvement += 1
                else:
                    self._no_improvement = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best[0] = net.get_params()
            else:
                if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                    self._no_improvement += 1
                else:
                    self._no_improvement = 0
                self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement > self.n_iter_no_change:
                if self.solver == "sgd" and self.learning_rate == "adaptive" and \
                        self._lr > 1e-6:
                    self._lr /= 5
                    self._no_improvement = 0
                    return False
                stopped[0] = True
                return True
            return False

        kwargs = dict(epochs=epochs, shuffle=bool(self.shuffle), sample_weight=sample_weight,
                      callbacks=[after_epoch], verbose=False)
        if self.solver == "rprop":
            kwargs.update(optimizer=self._optimizer())
            if self.alpha:
                kwargs.update(l2=self.alpha / n)
        else:
            # scikit-learn penalises alpha/2 ||W||^2 per batch of size B: l2 = alpha / B
            kwargs.update(optimizer=self._optimizer(), batch_size=batch_size,
                          l2=self.alpha / batch_size, lr=self._lr,
                          lr_schedule=lambda epoch: self._lr)
        net.train(X, Y, **kwargs)
        if early_stopping:
            self.best_loss_ = None
            if best[0] is not None:
                net._params[...] = best[0]
        if not incremental and not stopped[0] and self.n_iter_ >= self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning)
        return self

    # -- scikit-learn's fitted attributes ---------------------------------------------------

    @property
    def coefs_(self):
        """Weight matrices in scikit-learn's (n_in, n_out) orientation (copies)."""
        check_is_fitted(self, "network_")
        return [w.T.copy() for w in self.network_.weights]

    @property
    def intercepts_(self):
        """Bias vectors (copies)."""
        check_is_fitted(self, "network_")
        return [b.copy() for b in self.network_.biases]

    @property
    def n_layers_(self):
        check_is_fitted(self, "network_")
        return len(self.network_.sizes)

    @property
    def n_outputs_(self):
        check_is_fitted(self, "network_")
        return self.network_.sizes[-1]

    @property
    def out_activation_(self):
        check_is_fitted(self, "network_")
        return {"linear": "identity", "sigmoid": "logistic"}.get(
            self.network_.activations[-1], self.network_.activations[-1])

    @property
    def loss_(self):
        check_is_fitted(self, "network_")
        return self.loss_curve_[-1] if self.loss_curve_ else None

    def _forward(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.network_.forward(X)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y (epochs of the chosen solver, up to ``max_iter``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by cbackprop's compiled engine.

    Log-loss: softmax outputs with categorical cross-entropy for more than two classes, one
    logistic output with binary cross-entropy for two, logistic outputs for multi-label
    targets. Parameters are scikit-learn's :class:`sklearn.neural_network.MLPClassifier`'s
    (``solver`` takes ``"sgd"``, ``"adam"`` or ``"rprop"``) plus ``dtype``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
    solver : {"sgd", "adam", "rprop"}, default="adam"
        ``"rprop"`` trains on the whole data set per step (iRprop-); it ignores
        ``batch_size`` and the learning-rate settings.
    alpha : float, default=0.0001
        L2 penalty ``alpha/2 ||W||^2`` per batch, as scikit-learn's.
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` for "auto".
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        For ``solver="sgd"``: scikit-learn's rules, applied between epochs.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling and the validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when its accuracy
        has not improved by ``tol`` for ``n_iter_no_change`` epochs; the best weights are
        restored.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's.
    n_iter_no_change : int, default=10
    dtype : numpy.float32 or numpy.float64, default=numpy.float64

    Attributes
    ----------
    network_ : cbackprop.Network
        The trained network (for ``explain``, ``save``, ...).
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_,
    n_outputs_, out_activation_ : as scikit-learn's.
    """

    _regression = False

    def _out_activation(self):
        return "softmax" if self._label_type == "multiclass" else "sigmoid"

    def _loss(self):
        return "cross_entropy"

    def _encode_targets(self, y, first, incremental, classes):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        target_type = type_of_target(y)
        if target_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"Unknown label type: {target_type}; MLPClassifier takes binary, "
                             f"multi-class or multi-label targets")
        if first:
            if incremental:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to "
                                     "partial_fit")
                labels = unique_labels(classes)
            else:
                labels = unique_labels(y)
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(labels if target_type != "multilabel-indicator" else y)
            self.classes_ = self._label_binarizer.classes_
            self._label_type = ("multilabel" if target_type == "multilabel-indicator" else
                                "multiclass" if len(self.classes_) > 2 else "binary")
        else:
            if classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as on the first call "
                                 f"({self.classes_!r})")
            if target_type != "multilabel-indicator" and not np.isin(y, self.classes_).all():
                raise ValueError(f"y contains labels not seen before: "
                                 f"{sorted(set(np.unique(y)) - set(self.classes_))}")
        Y = self._label_binarizer.transform(y).astype(np.float64)
        if Y.shape[1] == 0:
            raise ValueError("y has a single class; a classifier needs at least two")
        return Y

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing the fitted network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        classes : array-like, required on the first call
            Every class that ``y`` will ever hold.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        if self.solver == "rprop":
            raise ValueError("partial_fit needs a stochastic solver ('sgd' or 'adam'), not "
                             "'rprop'")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes).

        Binary targets give ``[1 - p, p]`` from the single logistic output.
        """
        h = self._forward(X).astype(np.float64)
        if self._label_type == "binary":
            return np.hstack([1 - h, h])
        return h

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class labels (a label indicator matrix for multi-label targets)."""
        h = self._forward(X)
        if self._label_type == "multiclass":
            return self.classes_[np.argmax(h, axis=1)]
        return self._label_binarizer.inverse_transform(h, threshold=0.5)

    def _score_encoded(self, X, Y, sample_weight):
        mode = SCORE_ARGMAX if self._label_type == "multiclass" else SCORE_THRESHOLD
        return accuracy(self.network_, X, Y, mode, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by cbackprop's compiled engine.

    Identity outputs and the per-sample loss ``1/2 ||y - h||^2``. Parameters and attributes
    as :class:`MLPClassifier` (and scikit-learn's :class:`sklearn.neural_network.MLPRegressor`);
    ``early_stopping`` watches the validation R^2.
    """

    _regression = True

    def _out_activation(self):
        return "linear"

    def _loss(self):
        return "mse"

    def _encode_targets(self, y, first, incremental, classes):
        y = np.asarray(y, dtype=np.float64)
        if first:
            self._y_1d = y.ndim == 1
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the fitted network."""
        if self.solver == "rprop":
            raise ValueError("partial_fit needs a stochastic solver ('sgd' or 'adam'), not "
                             "'rprop'")
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs)."""
        h = self._forward(X).astype(np.float64, copy=False)
        return h.ravel() if self._y_1d else h

    def _score_encoded(self, X, Y, sample_weight):
        from sklearn.metrics import r2_score
        return float(r2_score(Y, self.network_.forward(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _real_in(value, name, low, high, low_open=False, high_open=True):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    ok = (value > low if low_open else value >= low) and (value < high if high_open else
                                                           value <= high)
    if not ok:
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}"
                         f"{')' if high_open else ']'}, got {value!r}")
