"""PyTorch (CPU) written the way users write it.

nn.Sequential of nn.Linear + nn.Sigmoid, optim.SGD (no momentum),
zero_grad / backward / step per batch, loss = 0.5*((y-h)**2).sum(1).mean(),
which is the batch mean of J, so SGD steps on the mean gradient.
Threads: torch.set_num_threads(threads) (intra-op), one inter-op thread.
"""

NAME = "pytorch"


def worker_env(threads):
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def available():
    try:
        import torch  # noqa: F401
        return True
    except Exception as exc:  # noqa: BLE001
        return "import torch failed: %s (install: pip install \"torch==2.13.0+cpu\")" % exc


def version():
    import torch
    return torch.__version__


def supports(kind, batch_size, threads):
    return None


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr, threads):
        import numpy as np
        import torch
        from torch import nn

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # only allowed once per process
        self.torch = torch
        self.tdtype = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.Sigmoid()]
        self.model = nn.Sequential(*layers).to(self.tdtype)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, W, b in zip(self.linears, weights, biases):
                lin.weight.copy_(torch.from_numpy(np.asarray(W, dtype=dtype)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=dtype)))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.0)
        self.batch_size = batch_size
        self._data = (None, None, None)

    def _tensors(self, X, Y):
        if self._data[0] is not X:
            self._data = (X, self.torch.from_numpy(X), self.torch.from_numpy(Y))
        return self._data[1], self._data[2]

    def epoch(self, X, Y):
        Xt, Yt = self._tensors(X, Y)
        model, opt, B = self.model, self.opt, self.batch_size
        for s in range(0, Xt.shape[0], B):
            xb = Xt[s:s + B]
            yb = Yt[s:s + B]
            opt.zero_grad()
            h = model(xb)
            loss = 0.5 * ((yb - h) ** 2).sum(dim=1).mean()
            loss.backward()
            opt.step()

    def params(self):
        return ([l.weight.detach().numpy().copy() for l in self.linears],
                [l.bias.detach().numpy().copy() for l in self.linears])

    def forward(self, X):
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(X)).numpy()


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(sizes, weights, biases, dtype, batch_size, lr, threads)
