# Design: one call trains over a run of samples (an epoch, or a chunk of one) with the GIL
# released and no allocation inside the loop. Each step moves every parameter by the mean
# gradient g of its batch: v = momentum * v - lr * g; W = W + v (with momentum = 0 this is
# W = W - lr * g and the velocity is neither read nor written).
#   batch_size == 1: online SGD, the matrix-vector path. One sample's backward pass reads each
#     row of W^(layer) once, both to propagate delta^(layer) = (W^T delta^(layer+1)) * f'(z)
#     and to apply the update, so no gradient buffer is needed.
#   batch_size > 1: mini-batch SGD, matrix-matrix through BLAS gemm (see _passes.pxd).
# Directives come from setup.py (boundscheck, wraparound, initializedcheck off; cdivision on):
# safe because cbackprop/train.py validates X, Y, order, params, velocity and spec first.
#
# Notation: W[i, j] = w_ij, i the unit fed (output side), j the unit it leaves (input side);
# h = f(z), delta = dJ/dz, eta = lr.
from cython cimport floating
from libc.string cimport memcpy, memset
from _activations cimport mul_derivative, output_delta, sample_loss
from _passes cimport (Layout, make_layout, forward_sample, forward_block,
                      loss_and_delta_block, backward_block)


cdef inline floating sgd_sample(const Layout* net, floating* params, floating* velocity,
                                const floating* x, const floating* y,
                                floating* h, floating* z_out, floating* delta,
                                floating lr, floating momentum) noexcept nogil:
    """One online SGD step on one sample; returns its loss J before the step."""
    cdef Py_ssize_t layer, i, j, n_in, n_out, last = net.n_layers - 1
    cdef const floating* h_in
    cdef floating* W
    cdef floating* V
    cdef floating* b
    cdef floating* d_out
    cdef floating* d_in
    cdef floating d_i, step, w, J
    cdef int out_code = <int> net.codes[last]

    forward_sample(net, params, x, h, z_out)
    J = sample_loss(net.loss, out_code, h + net.unit_off[last], z_out, y, net.n_out)
    output_delta(net.loss, out_code, h + net.unit_off[last], y,
                 delta + net.unit_off[last], net.n_out)

    for layer in range(last, -1, -1):
        n_in = net.sizes[layer]
        n_out = net.sizes[layer + 1]
        W = params + net.w_off[layer]
        b = params + net.b_off[layer]
        d_out = delta + net.unit_off[layer]
        h_in = x if layer == 0 else h + net.unit_off[layer - 1]
        d_in = NULL
        if layer > 0:
            d_in = delta + net.unit_off[layer - 1]
            memset(d_in, 0, n_in * sizeof(floating))
        for i in range(n_out):
            d_i = d_out[i]
            step = lr * d_i
            if momentum == 0:
                if d_in != NULL:
                    # one pass over row i: delta^(layer)_j += w_ij delta_i (old w_ij), then
                    # w_ij -= lr delta_i h_j
                    for j in range(n_in):
                        w = W[i * n_in + j]
                        d_in[j] += w * d_i
                        W[i * n_in + j] = w - step * h_in[j]
                else:
                    for j in range(n_in):
                        W[i * n_in + j] -= step * h_in[j]
                b[i] -= step
            else:
                V = velocity + net.w_off[layer] + i * n_in
                if d_in != NULL:
                    for j in range(n_in):
                        w = W[i * n_in + j]
                        d_in[j] += w * d_i
                        V[j] = momentum * V[j] - step * h_in[j]
                        W[i * n_in + j] = w + V[j]
                else:
                    for j in range(n_in):
                        V[j] = momentum * V[j] - step * h_in[j]
                        W[i * n_in + j] += V[j]
                V = velocity + net.b_off[layer]
                V[i] = momentum * V[i] - step
                b[i] += V[i]
        if d_in != NULL:
            mul_derivative(<int> net.codes[layer - 1], h_in, d_in, n_in)
    return J


cdef inline Py_ssize_t _largest_batch(Py_ssize_t batch_size, Py_ssize_t n) noexcept nogil:
    return max(1, min(batch_size, n))


def workspace_size(const Py_ssize_t[::1] spec, Py_ssize_t batch_size, Py_ssize_t n,
                   bint sequential):
    """Length of the scratch buffer train_epoch needs for these arguments.

    Allocate it once per fit and pass it to every train_epoch call: a fresh buffer per epoch
    costs page faults on every call (measured: 5% of a full-batch run in perf).
    """
    cdef Layout net = make_layout(&spec[0])
    cdef Py_ssize_t B = _largest_batch(batch_size, n)
    cdef Py_ssize_t size = B * (2 * net.n_units + net.n_out)   # h, delta, z of the output
    if B > 1 and not sequential:
        size += B * (net.n_in + net.n_out)                    # gathered rows of X and Y
    return size


def train_epoch(const Py_ssize_t[::1] spec,    # IN     network description (see _passes.pxd)
                floating[::1] params,          # IN/OUT all W and b
                floating[::1] velocity,        # IN/OUT like params; unused when momentum == 0
                const floating[:, ::1] X,      # IN     (n, n_in)
                const floating[:, ::1] Y,      # IN     (n, n_out)
                const Py_ssize_t[::1] order,   # IN     rows to visit, in order, each < n
                bint sequential,               # IN     order[s] = order[0] + s: batches are slices
                double lr,
                Py_ssize_t batch_size,
                double momentum,
                floating[::1] work):           # SCRATCH workspace_size(...) elements
    """Train on the rows X[order] in batches of batch_size; returns sum_s J_s (before each step)."""
    cdef Layout net = make_layout(&spec[0])
    cdef Py_ssize_t n = order.shape[0], start, m, r, s
    cdef Py_ssize_t n_in = net.n_in, n_out = net.n_out
    # B is the largest batch this call forms; B == 1 (batch_size 1, or a single sample)
    # is online SGD. Scratch for gathering shuffled rows exists only when the batch path
    # runs unsequentially, so the path taken below must follow from B alone.
    cdef Py_ssize_t B = _largest_batch(batch_size, n)
    cdef bint gather = B > 1 and not sequential
    if work.shape[0] < workspace_size(spec, batch_size, n, sequential):
        raise ValueError("train_epoch: work is smaller than workspace_size()")
    cdef floating* H = &work[0]
    cdef floating* D = H + B * net.n_units
    cdef floating* Z = D + B * net.n_units
    cdef floating* XB = Z + B * n_out
    cdef floating* YB = XB + B * n_in
    cdef const floating* Xb
    cdef const floating* Yb
    cdef floating eta = <floating> lr, mu = <floating> momentum
    cdef double total = 0
    if n == 0:
        return 0.0
    with nogil:
        if B == 1:
            for s in range(n):
                r = order[s]
                total += sgd_sample(&net, &params[0], &velocity[0], &X[r, 0], &Y[r, 0],
                                    H, Z, D, eta, mu)
        else:
            start = 0
            while start < n:
                m = min(B, n - start)
                if not gather:
                    Xb = &X[order[start], 0]
                    Yb = &Y[order[start], 0]
                else:
                    for s in range(m):
                        r = order[start + s]
                        memcpy(XB + s * n_in, &X[r, 0], n_in * sizeof(floating))
                        memcpy(YB + s * n_out, &Y[r, 0], n_out * sizeof(floating))
                    Xb = XB
                    Yb = YB
                forward_block(&net, &params[0], Xb, <int> m, H, Z)
                total += loss_and_delta_block(&net, H, Z, Yb, <int> m, D)
                if mu == 0:
                    backward_block(&net, &params[0], Xb, H, D, <int> m,
                                   &params[0], -eta / m, 1, False)
                else:
                    backward_block(&net, &params[0], Xb, H, D, <int> m,
                                   &velocity[0], -eta / m, mu, True)
                start += m
    return total
