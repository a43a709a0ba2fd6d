"""Trainings on a real dask.distributed cluster (scheduler and worker processes on loopback):
a grid search through joblib's dask backend, and plain Networks through client.map."""

import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")

from joblib import parallel_backend  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import cbackprop  # noqa: E402
from cbackprop.sklearn import MLPClassifier  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


def _data():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_grid_search_on_the_cluster_equals_the_serial_run(client):
    X, y = _data()
    grid = {"hidden_layer_sizes": [(5,), (12,)], "solver": ["adam", "rprop"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = GridSearchCV(MLPClassifier(max_iter=40, random_state=0), grid, cv=3).fit(X, y)
        with parallel_backend("dask"):
            remote = GridSearchCV(MLPClassifier(max_iter=40, random_state=0), grid,
                                  cv=3).fit(X, y)
    np.testing.assert_array_equal(serial.cv_results_["mean_test_score"],
                                  remote.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(serial.best_estimator_.coefs_[0],
                                  remote.best_estimator_.coefs_[0])
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2


def _train(net, X, y, seed):
    net.train(X, y, epochs=20, optimizer="adam", lr=0.01, batch_size=8, seed=seed)
    return net


def test_networks_travel_to_workers_and_back(client):
    X, y = _data()
    nets = [cbackprop.Network([4, 8, 3], ["tanh", "softmax"], "cross_entropy", seed=s)
            for s in range(4)]
    futures = client.map(_train, nets, [X] * 4, [y] * 4, range(4), pure=False)
    remote = client.gather(futures)
    for s, (net, back) in enumerate(zip(nets, remote)):
        _train(net, X, y, s)
        np.testing.assert_array_equal(back.get_params(), net.get_params())
        assert back.optimizer_state["steps"] == net.optimizer_state["steps"]
