#!/usr/bin/env python3
"""Peer comparison: cbackprop against other ways to train the same MLPs.

    python benchmarks/compare.py [--quick] [--rows T,D,...] [--dtypes float32,float64]
                                 [--threads 1,2] [--repeat 5] [--contenders a,b] [--markdown]

Workloads (identical for every contender): sigmoid hidden and output layers,
J = 1/2 ||y - h||^2 per sample, plain SGD on the batch-mean gradient (a short
last batch uses its own row count), no shuffling, identical initial weights,
X uniform in [0, 1), one-hot float targets (a 0/1 column when n_out == 1).

    T      2-8-1            batch 1     20,000 samples
    D      64-30-10         batch 1     10,000
    M1     784-128-10       batch 1      5,000
    M64    784-128-10       batch 64    20,000
    W      784-512-512-10   batch 128   10,000
    D-inf  64-30-10         forward    100,000
    M1-inf 784-128-10       forward    100,000

Method:
* Every contender (benchmarks/contenders/*.py) runs in its own worker process
  per thread count, so thread settings that libraries read at import (XLA,
  OpenMP, BLAS) can be set; 1-thread workers are pinned to one CPU.  BLAS and
  OpenMP pools are also capped with threadpoolctl, torch with set_num_threads.
* The first epoch from the shared initial weights is the warm-up and the
  check: the weights after it must match a float64 run of the NumPy
  reference (max |W - W_ref| / max |W_ref| <= 1e-8 for float64, 1e-3 for
  float32).  A contender that does not match is shown as MISMATCH and left
  out of the ratios.  Inference checks the outputs the same way.
* Then --repeat rounds, contenders interleaved round-robin: one timed epoch
  each in the first round, then back-to-back epochs filling about
  --round-seconds (at the pace of its first; 1 to 50), each timed; samples/s
  is n / the median of all of a contender's timed epochs (at least --repeat).
  A row whose epoch takes milliseconds (T, D-inf) is thus timed over more
  than a few moments of a shared machine.  After each round the harness waits
  (up to 1 s) until that worker's thread pools stop spinning, so they cannot
  steal a core from the next contender.
* Useful FLOPs per sample: training 2 per weight (forward) + 2 (weight
  gradient) + 2 (delta propagation, every weight layer but the first);
  inference 2 per weight.  Biases and activations are not counted.  %peak is
  against numpy matmul on 2048x2048 with the same dtype and thread count.
* The header gives the round trip of one cache line between the first two
  CPUs (benchmarks/_core_probe.c) at the start and the end of the run: on the
  2-core development VM it moved between about 80-140 ns and 380-490 ns within
  minutes, and every contender's 2-thread rows with large gemms (W) were about
  a quarter slower with the larger figure.
* lr is float32(0.1) = 0.10000000149011612 for everyone, because FANN stores
  its learning rate as a C float even in doublefann.
"""

import argparse
import datetime
import os
import pickle
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

LR = float(np.float32(0.1))
SEED = 20240611
TOL = {"float64": 1e-8, "float32": 1e-3}

# name: sizes, batch (None = inference), samples, samples with --quick
WORKLOADS = {
    "T": ((2, 8, 1), 1, 20000, 2000),
    "D": ((64, 30, 10), 1, 10000, 1000),
    "M1": ((784, 128, 10), 1, 5000, 500),
    "M64": ((784, 128, 10), 64, 20000, 2000),
    "W": ((784, 512, 512, 10), 128, 10000, 1000),
    "D-inf": ((64, 30, 10), None, 100000, 10000),
    "M1-inf": ((784, 128, 10), None, 100000, 10000),
}


# --------------------------------------------------------------------------
# data, shared by the parent (reference) and the workers (contenders)

def make_data(workload, n):
    """Initial weights, biases, X, Y in float64; every value is a float32 value,
    so the float32 and float64 rows start from exactly the same numbers."""
    sizes, batch, _, _ = WORKLOADS[workload]
    rng = np.random.default_rng([SEED, zlib.crc32(workload.encode())])
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))  # Glorot uniform
        weights.append(f32(rng.uniform(-limit, limit, (n_out, n_in))))
        biases.append(f32(rng.uniform(-0.1, 0.1, n_out)))
    X = f32(rng.random((n, sizes[0]), dtype=np.float32))
    labels = rng.integers(0, max(sizes[-1], 2), n)
    if sizes[-1] == 1:
        Y = labels[:, None].astype(np.float64)
    else:
        Y = np.eye(sizes[-1])[labels]
    return weights, biases, X, Y


def flops_per_sample(workload):
    sizes, batch, _, _ = WORKLOADS[workload]
    per = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    if batch is None:
        return 2 * sum(per)
    return sum(2 * w + 2 * w + (2 * w if l > 0 else 0) for l, w in enumerate(per))


def rel_err(got, ref):
    scale = max(float(np.abs(r).max()) for r in ref) or 1.0
    if len(got) != len(ref):
        return float("inf")
    worst = 0.0
    for g, r in zip(got, ref):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != r.shape:
            g = g.reshape(r.shape) if g.size == r.size else None
            if g is None:
                return float("inf")
        worst = max(worst, float(np.abs(g - r).max()))
    return worst / scale if np.isfinite(worst) else float("inf")


# --------------------------------------------------------------------------
# worker process: one contender, one thread count

def _limit_threads(threads):
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=threads)
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        return None


def worker_main(name, threads):
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to the worker's log, not the protocol
    proto_in = sys.stdin.buffer
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[:threads])
    from contenders import load
    mod = load(name)
    state = {}
    limiter = [None]

    def reply(obj):
        pickle.dump(obj, proto_out, protocol=pickle.HIGHEST_PROTOCOL)
        proto_out.flush()

    while True:
        try:
            msg = pickle.load(proto_in)
        except EOFError:
            return
        op = msg[0]
        try:
            if op == "hello":
                ok = mod.available()
                reply({"available": ok, "version": mod.version() if ok is True else None})
            elif op == "setup":
                state.clear()
                workload, n, dtype, th = msg[1:]
                sizes, batch, _, _ = WORKLOADS[workload]
                W, b, X, Y = make_data(workload, n)
                dt = np.dtype(dtype)
                state["X"] = np.ascontiguousarray(X, dtype=dt)
                state["Y"] = np.ascontiguousarray(Y, dtype=dt)
                state["batch"] = batch
                limiter[0] = _limit_threads(threads)
                state["tr"] = mod.make_trainer(sizes, W, b, dt.type, batch or 1, LR, threads)
                reply({"ok": True})
            elif op in ("check", "time"):
                tr, X, Y = state["tr"], state["X"], state["Y"]
                times = []
                for _ in range(msg[1] if op == "time" else 1):   # epochs, each timed
                    t0 = time.perf_counter()
                    if state["batch"] is None:
                        out = tr.forward(X)
                    else:
                        tr.epoch(X, Y)
                    times.append(time.perf_counter() - t0)
                if op == "check":
                    limiter[0] = _limit_threads(threads)  # libraries loaded lazily
                    res = [np.asarray(out)] if state["batch"] is None else tr.params()
                    if state["batch"] is not None:
                        res = list(res[0]) + list(res[1])
                    reply({"seconds": times[0], "result": res})
                else:
                    reply({"seconds": times})
            elif op == "drop":
                state.clear()
                reply({"ok": True})
            elif op == "quit":
                reply({"ok": True})
                return
            else:
                reply({"error": "unknown op %r" % (op,)})
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            traceback.print_exc()
            reply({"error": "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:200]
                                        if str(exc) else "")})


class Worker:
    def __init__(self, name, threads, timeout):
        from contenders import load
        mod = load(name)
        env = dict(os.environ)
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
            env[key] = str(threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if hasattr(mod, "worker_env"):
            env.update(mod.worker_env(threads))
        self.name, self.threads, self.timeout = name, threads, timeout
        self.log = tempfile.NamedTemporaryFile(prefix="cbp-%s-%d-" % (name, threads),
                                               suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", name,
             "--worker-threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.dead = None

    def send(self, *msg):
        if self.dead:
            return
        try:
            pickle.dump(msg, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died("worker pipe closed")

    def recv(self):
        if self.dead:
            return {"error": self.dead}
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.proc.kill()
            self._died("timed out after %ds" % self.timeout)
            return {"error": self.dead}
        try:
            return pickle.load(self.proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            self._died("worker died (exit %s)" % self.proc.wait())
            return {"error": self.dead}

    def call(self, *msg):
        self.send(*msg)
        return self.recv()

    def _died(self, why):
        tail = ""
        try:
            with open(self.log.name, errors="replace") as fh:
                lines = [l.strip() for l in fh if l.strip()]
            tail = lines[-1][:160] if lines else ""
        except OSError:
            pass
        self.dead = why + (": " + tail if tail else "")

    def close(self):
        if self.proc.poll() is None and not self.dead:
            try:
                self.send("quit")
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


# --------------------------------------------------------------------------
# machine info

def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl)"
    parts = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            parts.append("%s %s (%s)" % (info.get("internal_api"), info.get("version"),
                                         info.get("architecture", "?")))
    return ", ".join(parts) or "none found"


def measure_peaks(threads_list, dtypes, size=2048, reps=3):
    """GFLOP/s of numpy matmul (BLAS gemm) per (dtype, threads)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    peaks = {}
    rng = np.random.default_rng(0)
    for dt in dtypes:
        A = rng.random((size, size)).astype(dt)
        B = rng.random((size, size)).astype(dt)
        for th in threads_list:
            ctx = threadpool_limits(limits=th, user_api="blas") if threadpool_limits else None
            try:
                A @ B
                best = min(_timed(lambda: A @ B) for _ in range(reps))
            finally:
                if ctx is not None:
                    ctx.restore_original_limits()
            peaks[(dt, th)] = 2.0 * size ** 3 / best / 1e9
    return peaks


def cores_round_trip(rounds=200000):
    """Nanoseconds for one cache line's round trip between the first two CPUs this process may
    run on (benchmarks/_core_probe.c, compiled here with gcc), or None where that cannot be
    measured (one CPU, no compiler, not Linux)."""
    import ctypes
    from contenders import build_c
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None
    if len(cpus) < 2:
        return None
    try:
        out = build_c(os.path.join(HERE, "_core_probe.c"), "core_probe", ["-pthread"])
        probe = ctypes.CDLL(out).round_trip_ns
        probe.restype = ctypes.c_double
        probe.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        ns = probe(cpus[0], cpus[1], rounds)
    except OSError:
        return None
    return ns if ns > 0 else None


def busy_jiffies():
    """Busy CPU time of the whole machine so far, in clock ticks (None off Linux)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        return sum(f) - f[3] - (f[4] if len(f) > 4 else 0)  # minus idle and iowait
    except (OSError, ValueError, IndexError):
        return None


def _cpu_ns(pid):
    """CPU time used so far by all threads of pid, in ns (None if unknown)."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as fh:
                    total += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def wait_idle(pids, window=0.01, busy_fraction=0.1, cap=1.0):
    """Wait until the processes stop burning CPU (at most cap seconds).

    Thread pools (OpenBLAS, OpenMP, XLA) spin for a while after each call;
    on a 2-core machine a spinning pool left behind by the previous contender
    would steal a core from the next one.  Returns the seconds waited."""
    t0 = time.perf_counter()
    pids = [p for p in pids if p]
    while time.perf_counter() - t0 < cap:
        before = [_cpu_ns(p) for p in pids]
        if None in before:
            time.sleep(window)
            return time.perf_counter() - t0
        time.sleep(window)
        after = [_cpu_ns(p) for p in pids]
        if None in after:
            break
        if all((a - b) / 1e9 < window * busy_fraction for a, b in zip(after, before)):
            break
    return time.perf_counter() - t0


# The most epochs a contender runs back to back in one timing round (epochs_per_round).
MOST_EPOCHS_PER_ROUND = 50


def epochs_per_round(times, round_seconds):
    """Epochs a contender runs back to back in one round of the interleaved timing: one in
    the first round, then enough for round_seconds at its first round's pace (at most
    MOST_EPOCHS_PER_ROUND), so that a row whose epoch takes a few milliseconds (T, D-inf) is
    timed over more than a few moments of a shared machine."""
    if not times or round_seconds <= 0:
        return 1
    return max(1, min(MOST_EPOCHS_PER_ROUND, int(round_seconds / max(times[0], 1e-9))))


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------
# the run

def reference(workload, n, cache={}):  # noqa: B006 - deliberate memo
    key = (workload, n)
    if key not in cache:
        from contenders import numpy_ref
        W, b, X, Y = make_data(workload, n)
        batch = WORKLOADS[workload][1]
        if batch is None:
            cache[key] = [numpy_ref.reference_forward(W, b, X)]
        else:
            rw, rb = numpy_ref.reference_epoch(W, b, X, Y, LR, batch)
            cache[key] = list(rw) + list(rb)
    return cache[key]


def run(args):
    from contenders import CONTENDERS, load
    names = args.contenders or CONTENDERS
    pool, hello = {}, {}

    def worker(name, th):
        mod = load(name)
        th = 1 if getattr(mod, "SINGLE_THREADED", False) else th
        if (name, th) not in pool:
            pool[(name, th)] = Worker(name, th, args.timeout)
            pool[(name, th)].send("hello")
        w = pool[(name, th)]
        if (name, th) not in hello:
            hello[(name, th)] = w.recv()
        return w

    # start every worker at once so their imports overlap
    for name in names:
        for th in args.threads:
            mod = load(name)
            key = (name, 1 if getattr(mod, "SINGLE_THREADED", False) else th)
            if key not in pool:
                pool[key] = Worker(name, key[1], args.timeout)
                pool[key].send("hello")
    versions = {}
    for (name, th) in list(pool):
        worker(name, th)
        res = hello[(name, th)]
        label = load(name).NAME
        if res.get("available") is True:
            versions[label] = res["version"]
        else:
            versions.setdefault(label, None)

    rows, notes = [], []
    peaks = measure_peaks(args.threads, args.dtypes, reps=2 if args.quick else 3)
    round_trips = [cores_round_trip()]
    try:
        for wl in args.rows:
            sizes, batch, n_full, n_quick = WORKLOADS[wl]
            n = n_quick if args.quick else n_full
            kind = "infer" if batch is None else "train"
            ref = reference(wl, n)
            fps = flops_per_sample(wl)
            for dt in args.dtypes:
                for th in args.threads:
                    group = []
                    for name in names:
                        mod = load(name)
                        row = {"wl": wl, "dtype": dt, "threads": th, "name": mod.NAME,
                               "single": getattr(mod, "SINGLE_THREADED", False) and th > 1}
                        w = worker(name, th)
                        avail = hello[(w.name, w.threads)]
                        if "error" in avail:
                            row["na"] = avail["error"]
                        elif avail["available"] is not True:
                            row["na"] = str(avail["available"])
                        else:
                            why = mod.supports(kind, batch or 1, th)
                            if why:
                                notes.append("%s: %s (skipped)" % (mod.NAME, why))
                                continue
                            res = w.call("setup", wl, n, dt, th)
                            if "error" not in res:
                                res = w.call("check")
                            if "error" in res:
                                row["na"] = "failed: " + res["error"]
                            else:
                                err = rel_err(res["result"], ref)
                                row["err"] = err
                                row["ok"] = err <= TOL[dt]
                                if not row["ok"] and hasattr(mod, "variant_reference"):
                                    W0, b0, X0, Y0 = make_data(wl, n)
                                    var = mod.variant_reference(W0, b0, X0, Y0, LR, batch)
                                    verr = rel_err(res["result"], var)
                                    if verr <= TOL[dt]:
                                        row["ok"] = True
                                        row["variant"] = "%s: %s (error against that: %.1e)" % (
                                            mod.NAME, mod.VARIANT_NOTE, verr)
                                row["times"] = []
                                row["worker"] = w
                        rows.append(row)
                        group.append(row)
                    live = [r for r in group if "worker" in r]
                    wait_idle([os.getpid()] + [r["worker"].proc.pid for r in live])
                    for rep in range(args.repeat):
                        k = rep % len(live) if live else 0
                        for r in live[k:] + live[:k]:
                            if "na" in r:
                                continue
                            res = r["worker"].call("time", epochs_per_round(r["times"],
                                                                            args.round_seconds))
                            wait_idle([r["worker"].proc.pid])
                            if "error" in res:
                                r["na"] = "failed: " + res["error"]
                            else:
                                r["times"].extend(res["seconds"])
                    for r in live:
                        r["worker"].call("drop")
                        del r["worker"]
                        if "na" not in r:
                            med = statistics.median(r["times"])
                            r["sps"] = n / med
                            r["gflops"] = r["sps"] * fps / 1e9
                            peak = peaks.get((dt, 1 if r["single"] else th))
                            r["peak"] = r["gflops"] / peak if peak else None
                    best = max((r["sps"] for r in group if r.get("ok") and "sps" in r), default=None)
                    for r in group:
                        if best and r.get("ok") and "sps" in r:
                            r["ratio"] = r["sps"] / best
                    if args.progress:
                        print("  done %s %s %dT" % (wl, dt, th), file=sys.stderr, flush=True)
    finally:
        for w in pool.values():
            w.close()
    round_trips.append(cores_round_trip())
    return rows, notes, versions, peaks, round_trips


# --------------------------------------------------------------------------
# output

def fmt_rate(x):
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e4:
        return "%.0fk" % (x / 1e3)
    if x >= 1e3:
        return "%.1fk" % (x / 1e3)
    return "%.0f" % x


def _sig(x):
    """Three significant digits, without exponent for ordinary sizes."""
    if x == 0:
        return "0"
    if x >= 100:
        return "%.0f" % x
    digits = max(0, 2 - int(np.floor(np.log10(abs(x)))))
    return "%.*f" % (min(digits, 6), x)


def table(rows, markdown):
    head = ["row", "dtype", "thr", "contender", "samples/s", "vs best", "GFLOP/s", "%peak",
            "check (err)"]
    body, reasons, keys, variants = [], [], [], []
    for r in rows:
        thr = "%d%s" % (r["threads"], "*" if r["single"] else "")
        keys.append((r["wl"], r["dtype"], r["threads"]))
        if "na" in r:
            reason = r["na"]
            if reason not in reasons:
                reasons.append(reason)
            rate = "n/a [%d]" % (reasons.index(reason) + 1)
            body.append([r["wl"], r["dtype"], thr, r["name"], rate, "", "", "", ""])
            continue
        check = ("ok" if r["ok"] else "MISMATCH") + " (%.1e)" % r["err"]
        if "variant" in r:
            if r["variant"] not in variants:
                variants.append(r["variant"])
            check = "ok+%d (%.1e)" % (variants.index(r["variant"]) + 1, r["err"])
        ratio = _sig(r["ratio"]) if "ratio" in r else "excl."
        peak = _sig(100 * r["peak"]) + "%" if r.get("peak") is not None else "?"
        body.append([r["wl"], r["dtype"], thr, r["name"], fmt_rate(r["sps"]), ratio,
                     _sig(r["gflops"]), peak, check])
    lines = []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---:" if i in (2, 4, 5, 6, 7) else "---"
                                    for i in range(len(head))) + "|")
        for b in body:
            lines.append("| " + " | ".join(b) + " |")
    else:
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
                  for i, h in enumerate(head)]
        right = {2, 4, 5, 6, 7}

        def line(cells):
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        lines.append(line(head))
        lines.append("  ".join("-" * w for w in widths))
        prev = None
        for key, b in zip(keys, body):
            if prev is not None and key != prev:
                lines.append("")
            prev = key
            lines.append(line(b))
    for i, v in enumerate(variants, 1):
        lines.append("")
        lines.append("ok+%d: differs from the reference beyond tolerance, but matches it with one "
                     "documented change: %s" % (i, v))
    return lines, reasons


def header(args, versions, peaks, round_trips, markdown):
    from contenders import numpy_ref
    out = []
    p = (lambda s: out.append("- " + s)) if markdown else (lambda s: out.append(s))
    p("cbackprop peer comparison, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    p("CPU: %s, %d logical CPUs" % (cpu_model(), os.cpu_count() or 0))
    p("Python %s, numpy %s, BLAS: %s" % (platform.python_version(), np.__version__, blas_info()))
    env = ", ".join("%s=%s" % (k, os.environ[k]) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                    if k in os.environ)
    if env:
        p("env: %s (they pin OpenBLAS to an older kernel; run under `env -u OPENBLAS_CORETYPE "
          "-u OPENBLAS_L2_SIZE` for native kernels)" % env)
    p("reference: %s; lr = float32(0.1); tolerance %s" % (
        numpy_ref.source(), ", ".join("%s %g" % kv for kv in TOL.items())))
    p("versions: " + "; ".join("%s %s" % (k, v or "n/a") for k, v in versions.items()))
    p("gemm peak (numpy matmul 2048^2): " + ", ".join(
        "%s %dT %.1f GFLOP/s" % (dt, th, v) for (dt, th), v in sorted(peaks.items())))
    if None not in round_trips:
        # (benchmarks/_core_probe.c: on the 2-core development VM 76-141 ns at some moments,
        # 380-490 at others, and 2-thread rows with large gemms a quarter slower with it)
        p("cores' round trip (one cache line between the first two CPUs): %.0f ns at the "
          "start, %.0f ns at the end" % tuple(round_trips))
    wl = []
    for name in args.rows:
        sizes, batch, n_full, n_quick = WORKLOADS[name]
        wl.append("%s %s %s n=%d" % (name, "-".join(map(str, sizes)),
                                     "fwd" if batch is None else "b%d" % batch,
                                     n_quick if args.quick else n_full))
    p("rows: " + "; ".join(wl) + "; median of the epochs of %d interleaved rounds (one "
      "epoch in the first, then as many as fill %g s, at most %d) after 1 warm-up/check epoch"
      % (args.repeat, args.round_seconds, MOST_EPOCHS_PER_ROUND))
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="fewer samples and 3 repeats (about 2 minutes)")
    ap.add_argument("--rows", default=",".join(WORKLOADS),
                    help="comma list of %s (default: all)" % ",".join(WORKLOADS))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--threads", default="1,2", help="thread budgets to run (default 1,2)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="interleaved timing rounds (default 5, 3 with --quick)")
    ap.add_argument("--round-seconds", type=float, default=0.2,
                    help="a contender's epochs in each round after the first fill about this "
                         "long (default 0.2; 0: one epoch a round)")
    ap.add_argument("--contenders", default=None,
                    help="comma list of modules in benchmarks/contenders (default: all)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--fallback-reference", action="store_true",
                    help="use the NumPy fallback in numpy_ref.py even if cbackprop.reference exists")
    ap.add_argument("--timeout", type=int, default=900,
                    help="seconds before a silent contender is killed (default 900)")
    ap.add_argument("--progress", action="store_true", help="print progress on stderr")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return args
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for r in args.rows:
        if r not in WORKLOADS:
            ap.error("unknown row %r (choose from %s)" % (r, ", ".join(WORKLOADS)))
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for d in args.dtypes:
        if d not in TOL:
            ap.error("unknown dtype %r" % d)
    args.threads = sorted({int(t) for t in args.threads.split(",")})
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.contenders:
        from contenders import CONTENDERS
        args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
        for c in args.contenders:
            if c not in CONTENDERS:
                ap.error("unknown contender %r (choose from %s)" % (c, ", ".join(CONTENDERS)))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.worker_threads)
        return 0
    if args.fallback_reference:
        os.environ["CBP_FALLBACK_REFERENCE"] = "1"
    j0, c0, w0 = busy_jiffies(), own_cpu_seconds(), time.time()
    rows, notes, versions, peaks, round_trips = run(args)
    load = None
    if j0 is not None:
        other = (busy_jiffies() - j0) / os.sysconf("SC_CLK_TCK") - (own_cpu_seconds() - c0)
        load = max(0.0, other) / (time.time() - w0)  # cores kept busy by other processes
    out = header(args, versions, peaks, round_trips, args.markdown)
    if load is not None:
        msg = "other processes kept %.2f of %d cores busy during the run" % (load, os.cpu_count() or 0)
        if load > 0.1:
            msg = "WARNING: " + msg + ": timings (2-thread rows most) are not trustworthy"
        out.append("- " + msg if args.markdown else msg)
    out.append("")
    lines, reasons = table(rows, args.markdown)
    out += lines
    out.append("")
    legend = ("vs best: samples/s over the fastest contender that passed the check in the same "
              "row/dtype/threads group; thr n* = single-threaded contender shown in the n-thread "
              "group; %peak: of numpy gemm peak at the contender's thread count.")
    out.append(legend)
    for i, reason in enumerate(reasons, 1):
        out.append("[%d] %s" % (i, reason))
    for note in sorted(set(notes)):
        out.append("- " + note if args.markdown else "  " + note)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
