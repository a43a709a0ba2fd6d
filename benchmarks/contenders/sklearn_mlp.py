"""scikit-learn MLPRegressor(solver="sgd", activation="logistic"), mini-batch rows only.

Made to do the same work as the reference:
* MLPRegressor's output activation is identity; the subclass sets
  out_activation_ = "logistic" after sklearn's _initialize.
* sklearn takes delta_out = h - y (canonical-link shortcut, exact only for
  identity + squared loss); the subclass multiplies it in place by h(1-h)
  before the last layer's gradient is formed, which gives
  delta_out = -(y-h) h (1-h), the same delta the reference propagates.
* Gradient scaling: sklearn's *reported* squared loss is mean over samples
  AND outputs / 2, but the gradient it steps on is delta^T a / n_samples,
  i.e. the batch mean of the gradient of J = 1/2 ||y-h||^2 (no 1/n_out).
  So learning_rate_init = lr unchanged (checked against the reference).
* momentum=0, nesterovs_momentum=False, alpha=0, shuffle=False,
  learning_rate="constant"; one partial_fit call = one epoch.
Threads: BLAS only (threadpoolctl).
"""

NAME = "sklearn"


def available():
    try:
        import sklearn  # noqa: F401
        return True
    except Exception as exc:  # noqa: BLE001
        return "import sklearn failed: %s (pip install scikit-learn)" % exc


def version():
    import sklearn
    return sklearn.__version__


def supports(kind, batch_size, threads):
    if kind != "train":
        return "inference not benchmarked for sklearn"
    if batch_size == 1:
        return "mini-batch rows only"
    return None


def _make_class():
    from sklearn.neural_network import MLPRegressor
    from sklearn.neural_network._base import DERIVATIVES

    class LogisticOutputMLP(MLPRegressor):
        _init_params = None

        def _initialize(self, y, layer_units, dtype):
            super()._initialize(y, layer_units, dtype)
            self.out_activation_ = "logistic"
            if self._init_params is not None:
                for c, i, W, b in zip(self.coefs_, self.intercepts_, *self._init_params):
                    c[...] = W.T  # sklearn stores (n_in, n_out)
                    i[...] = b

        def _compute_loss_grad(self, layer, sw_sum, activations, deltas, coef_grads,
                               intercept_grads):
            if layer == self.n_layers_ - 2:
                # delta_out = (h - y) * h * (1 - h), in place so the hidden
                # layers back-propagate the corrected delta too.
                DERIVATIVES["logistic"](activations[-1], deltas[layer])
            return super()._compute_loss_grad(layer, sw_sum, activations, deltas,
                                              coef_grads, intercept_grads)

    return LogisticOutputMLP


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr, threads):
        import numpy as np
        cls = _make_class()
        self.model = cls(hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic",
                         solver="sgd", learning_rate="constant", learning_rate_init=lr,
                         momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                         batch_size=batch_size, shuffle=False, max_iter=1, tol=0.0,
                         n_iter_no_change=10 ** 9, early_stopping=False, random_state=0)
        self.model._init_params = ([np.asarray(w, dtype=dtype) for w in weights],
                                   [np.asarray(b, dtype=dtype) for b in biases])
        self.dtype = dtype

    def epoch(self, X, Y):
        self.model.partial_fit(X, Y)

    def params(self):
        m = self.model
        return [c.T.copy() for c in m.coefs_], [i.copy() for i in m.intercepts_]

    def forward(self, X):
        return self.model.predict(X)


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(sizes, weights, biases, dtype, batch_size, lr, threads)
