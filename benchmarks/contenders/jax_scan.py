"""JAX (CPU): the whole epoch jit-compiled, lax.scan over batches (batch 1 = samples).

Loss per batch = mean over rows of 0.5*sum((y-h)**2); jax.grad; p -= lr*g.
A smaller last batch (n % batch_size) is one extra step after the scan.
float64 needs jax_enable_x64 (set before any array is made).
Threads: XLA's CPU thread pool is sized at import, so compare.py runs JAX in
its own worker process; for 1 thread it sets
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
and pins the worker to one CPU (sched_setaffinity); for 2 threads it pins it
to two CPUs and leaves XLA's defaults.
"""

NAME = "jax"


def worker_env(threads):
    env = {"JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": str(threads)}
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return env


def available():
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        return True
    except Exception as exc:  # noqa: BLE001
        return "import jax failed: %s (pip install jax jaxlib)" % exc


def version():
    import jax
    import jaxlib
    return "jax %s, jaxlib %s" % (jax.__version__, jaxlib.__version__)


def supports(kind, batch_size, threads):
    return None


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr, threads):
        import functools

        import jax
        import jax.numpy as jnp
        import numpy as np
        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp, self.np = jax, jnp, np
        self.dtype = np.dtype(dtype)
        self.B = batch_size
        self.params_ = tuple((jnp.asarray(np.asarray(W, dtype=dtype)),
                              jnp.asarray(np.asarray(b, dtype=dtype)))
                             for W, b in zip(weights, biases))

        def predict(params, x):
            h = x
            for W, b in params:
                h = jax.nn.sigmoid(h @ W.T + b)
            return h

        def loss(params, x, y):
            h = predict(params, x)
            return jnp.mean(0.5 * jnp.sum((y - h) ** 2, axis=1))

        grad = jax.grad(loss)

        def step(params, batch):
            g = grad(params, *batch)
            return jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g), None

        @functools.partial(jax.jit, donate_argnums=0)
        def epoch(params, Xb, Yb, Xr, Yr):
            params, _ = jax.lax.scan(step, params, (Xb, Yb))
            if Xr.shape[0]:
                params, _ = step(params, (Xr, Yr))
            return params

        self._epoch = epoch
        self._predict = jax.jit(predict)
        self._data = (None, None)

    def _split(self, X, Y):
        if self._data[0] is not X:
            jnp, B = self.jnp, self.B
            n = X.shape[0]
            nb = n // B
            full = nb * B
            dev = (jnp.asarray(X[:full].reshape(nb, B, X.shape[1])),
                   jnp.asarray(Y[:full].reshape(nb, B, Y.shape[1])),
                   jnp.asarray(X[full:]), jnp.asarray(Y[full:]))
            self._data = (X, dev)
        return self._data[1]

    def epoch(self, X, Y):
        self.params_ = self._epoch(self.params_, *self._split(X, Y))
        self.jax.block_until_ready(self.params_)

    def params(self):
        np = self.np
        return ([np.array(W) for W, _ in self.params_], [np.array(b) for _, b in self.params_])

    def forward(self, X):
        out = self._predict(self.params_, X)
        return self.np.asarray(out.block_until_ready())


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(sizes, weights, biases, dtype, batch_size, lr, threads)
