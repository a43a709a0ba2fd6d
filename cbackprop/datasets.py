"""Small tasks generated in code (no downloads) and CSV files in and out.

``xor``, ``two_spirals`` and ``sine`` build their data from formulas; ``load_csv`` reads a
table with a header row into arrays and ``save_csv`` writes one.

Examples
--------
>>> from cbackprop import datasets
>>> X, y = datasets.two_spirals()
>>> X.shape, y.shape
((194, 2), (194,))
>>> X, y = datasets.sine(50, noise=0.1, seed=0)
>>> X.shape, y.shape
((50, 1), (50,))
"""

import csv
import difflib
import os

import numpy as np

# Field values read as "missing" (compared after stripping, case-insensitively).
MISSING_VALUES = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})


def xor(dtype=np.float64):
    """The four XOR patterns.

    Returns
    -------
    X : ndarray of shape (4, 2)
    y : ndarray of shape (4,), 0.0 or 1.0
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    return X, np.array([0, 1, 1, 0], dtype=dtype)


def two_spirals(n=194, noise=0.0, seed=None, dtype=np.float64):
    """Two interleaved spirals, the benchmark of Lang and Witbrock (1988).

    Parameters
    ----------
    n : int, default=194
        Total number of points, half on each spiral (the original task has 194).
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to each coordinate.
    seed : int or None
        Seeds the noise.

    Returns
    -------
    X : ndarray of shape (n, 2), coordinates in the original units (radius up to 6.5)
    y : ndarray of shape (n,) of int, the spiral (0 or 1) of each point

    Notes
    -----
    Point ``i`` of the first spiral (``i = 0 .. 96`` in the original) lies at angle
    ``phi_i = i pi / 16`` and radius ``r_i = 6.5 (104 - i) / 104``, that is at
    ``(r_i sin phi_i, r_i cos phi_i)``; the second spiral is the first turned by 180 degrees.
    Each spiral winds three times around the origin, so no straight line, and no network
    without hidden layers, separates them.

    Examples
    --------
    >>> from cbackprop.datasets import two_spirals
    >>> X, y = two_spirals()
    >>> X[0].tolist(), X[97].tolist(), int(y[0]), int(y[97])
    ([0.0, 6.5], [-0.0, -6.5], 0, 1)
    """
    half = n // 2
    i = np.arange(half)
    # Lang and Witbrock: angle i * pi / 16, radius 6.5 (104 - i) / 104, for 97 points a spiral.
    angle = i * np.pi / 16 * 97 / max(half, 1)
    radius = 6.5 * (104 - i * 97 / max(half, 1)) / 104
    first = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    X = np.concatenate([first, -first])
    y = np.concatenate([np.zeros(half, dtype=int), np.ones(half, dtype=int)])
    if noise:
        X = X + np.random.default_rng(seed).normal(0, noise, X.shape)
    return X.astype(dtype), y


def sine(n=200, noise=0.0, seed=None, dtype=np.float64):
    """One period of a sine wave: a regression task with one input and one output.

    Parameters
    ----------
    n : int, default=200
        Number of points, evenly spaced over ``[-pi, pi]``.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the targets.
    seed : int or None
        Seeds the noise.

    Returns
    -------
    X : ndarray of shape (n, 1), the inputs ``x``
    y : ndarray of shape (n,), ``sin(x)`` plus noise

    Raises
    ------
    ValueError
        ``n`` < 1 or ``noise`` negative or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from cbackprop.datasets import sine
    >>> X, y = sine(5)
    >>> np.round(X[:, 0], 3).tolist(), np.round(y, 3).tolist()
    ([-3.142, -1.571, 0.0, 1.571, 3.142], [-0.0, -1.0, 0.0, 1.0, 0.0])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be finite and >= 0, got {noise!r}")
    x = np.linspace(-np.pi, np.pi, int(n))
    y = np.sin(x)
    if noise:
        y = y + np.random.default_rng(seed).normal(0, noise, y.shape)
    return x.reshape(-1, 1).astype(dtype), y.astype(dtype)


def load_csv(path, target=None, features=None, dtype=np.float64):
    """Read a comma-separated table with a header row into a feature matrix and a target.

    Parameters
    ----------
    path : str, path-like or text file
        A UTF-8 file (a byte-order mark is allowed) whose first non-blank line names the
        columns. Fields may be quoted (``"a, b"``; a doubled quote inside quotes is a quote; line
        breaks inside quotes are kept); blank lines are skipped; spaces around fields are ignored.
    target : str, optional
        The column to return as ``y``. Without it ``y`` is None.
    features : sequence of str, optional
        The columns of ``X``, in this order. Default: every column except ``target``.
        Columns not named are not read at all (they may hold anything).
    dtype : numpy dtype, default=numpy.float64
        dtype of ``X``.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features) of ``dtype``
    y : ndarray of shape (n_rows,), or None without ``target``
        int64 when every target value is an integer (``3``, ``-1``; class labels), float64
        when every value is a number (``2.5``, ``1e-3``, ``1.0``), otherwise str (text
        labels, such as ``setosa``).
    feature_names : list of str
        The names of the columns of ``X``.

    Raises
    ------
    ValueError
        The file is empty or not UTF-8 text, is malformed CSV (a row with a different
        number of fields than the header, an unclosed quote, a NUL byte), has a duplicate
        or empty column name, no data rows, no column ``target`` or one of ``features``, a
        missing value (an empty field, ``NA``, ``N/A``, ``NaN``, ``null``, ``None`` or
        ``?``) in a column it reads, or a feature value that is not a finite number. The
        message names the file, the line and the column.
    OSError
        The file cannot be opened (FileNotFoundError, IsADirectoryError, ...).

    Examples
    --------
    >>> import io
    >>> from cbackprop.datasets import load_csv
    >>> text = 'width,"height, cm",kind\\n1.5,20,tree\\n\\n0.2,0.5,"grass"\\n'
    >>> X, y, names = load_csv(io.StringIO(text), target="kind")
    >>> X.tolist(), y.tolist(), names
    ([[1.5, 20.0], [0.2, 0.5]], ['tree', 'grass'], ['width', 'height, cm'])
    """
    name, header, rows, lines = _read_table(path)
    columns = {c: k for k, c in enumerate(header)}
    if features is not None:              # named features missing: likely the wrong file
        features = list(features)
        missing = [f for f in features if f not in columns]
        if missing:
            raise ValueError(f"{name} lacks the column{'s' * (len(missing) > 1)} "
                             f"{_listing(missing)}{_did_you_mean(missing[0], header)}; "
                             f"its columns are {_listing(header)}")
        if target is not None and target in features:
            raise ValueError(f"{target!r} cannot be both the target and a feature")
    if target is not None and target not in columns:
        raise ValueError(f"{name} has no column {target!r}{_did_you_mean(target, header)}; "
                         f"its columns are {_listing(header)}")
    if features is None:
        features = [c for c in header if c != target]
    if not features:
        raise ValueError(f"{name} has no feature columns besides the target {target!r}")
    X = np.empty((len(rows), len(features)), dtype=dtype)
    for j, feature in enumerate(features):
        X[:, j] = _numeric_column(rows, lines, columns[feature], feature, name)
    y = None if target is None else _target_column(rows, lines, columns[target], target, name)
    return X, y, features


def save_csv(path, X, y=None, feature_names=None, target="y"):
    """Write ``X`` (and ``y``) as a CSV table with a header row that :func:`load_csv` reads.

    Parameters
    ----------
    path : str, path-like or text file
    X : array-like of shape (n, n_features)
    y : array-like of shape (n,), optional
        Written as the last column, named ``target``.
    feature_names : sequence of str, optional
        Default ``x1, x2, ...``.
    target : str, default="y"

    Examples
    --------
    >>> import io
    >>> from cbackprop.datasets import save_csv, xor
    >>> out = io.StringIO()
    >>> save_csv(out, *xor(), target="xor")
    >>> print(out.getvalue().replace("\\r", ""), end="")
    x1,x2,xor
    0.0,0.0,0.0
    0.0,1.0,1.0
    1.0,0.0,1.0
    1.0,1.0,0.0
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_rows, n_features), got shape {X.shape}")
    names = [f"x{k + 1}" for k in range(X.shape[1])] if feature_names is None \
        else [str(f) for f in feature_names]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} feature names for {X.shape[1]} columns")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    own = not hasattr(path, "write")
    f = open(path, "w", newline="", encoding="utf-8") if own else path
    try:
        writer = csv.writer(f)
        writer.writerow(names + ([] if y is None else [target]))
        for k in range(X.shape[0]):
            row = [_cell(v) for v in X[k]]
            writer.writerow(row if y is None else row + [_cell(y[k])])
    finally:
        if own:
            f.close()


def _cell(value):
    """A CSV field that reads back as the same value: shortest round-trip float repr."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return value.item() if isinstance(value, np.generic) else value


def _read_table(path):
    """(name, header, rows, line numbers) of a CSV file; rows all have len(header) fields."""
    if hasattr(path, "read"):
        return _parse(path, getattr(path, "name", "<stream>"))
    name = os.fspath(path)
    with open(name, newline="", encoding="utf-8-sig") as f:
        return _parse(f, name)


def _parse(f, name):
    # skipinitialspace: `a, "b, c"` quotes as `a,"b, c"` does; strict: an unclosed quote is
    # an error, not a field that swallows the rest of the file
    reader = csv.reader(f, skipinitialspace=True, strict=True)
    header, rows, lines = None, [], []
    start = 1                                            # the line the next record starts on
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(field.strip() for field in row):
                continue                                 # a blank line
            if header is None:
                header = _check_header([field.strip() for field in row], name)
                continue
            if len(row) != len(header):
                raise ValueError(f"{name}, line {line}: {len(row)} fields, but the header "
                                 f"names {len(header)} columns")
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        hint = " - an unclosed quote?" if "end of data" in str(exc) else ""
        raise ValueError(f"{name}, line {start}: malformed CSV ({exc}{hint})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text (byte {exc.start}: "
                         f"{exc.object[exc.start:exc.start + 1]!r}); is it a CSV file?") \
            from None
    if header is None:
        raise ValueError(f"{name} is empty: a CSV file needs a header row naming the columns")
    if not rows:
        raise ValueError(f"{name} has a header but no data rows")
    return name, header, rows, lines


def _check_header(header, name):
    for k, column in enumerate(header):
        if not column:
            raise ValueError(f"{name}: column {k + 1} of the header has no name")
    seen = set()
    for column in header:
        if column in seen:
            raise ValueError(f"{name}: the header names column {column!r} twice")
        seen.add(column)
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise ValueError(f"{name}: the header has a single column {header[0]!r}; "
                         f"cbackprop reads comma-separated values, not ';', tab or '|'")
    return header


def _numeric_column(rows, lines, k, column, name):
    values = [row[k].strip() for row in rows]
    try:
        out = np.array([float(v) for v in values])
    except ValueError:
        for s, v in enumerate(values):
            if v.lower() in MISSING_VALUES:
                raise _missing(name, lines[s], column, v) from None
            try:
                float(v)
            except ValueError:
                raise ValueError(f"{name}, line {lines[s]}: column {column!r} holds {v!r}, "
                                 f"not a number (features must be numeric)") from None
        raise
    bad = ~np.isfinite(out)
    if bad.any():
        s = int(np.argmax(bad))
        if values[s].lower() in MISSING_VALUES:
            raise _missing(name, lines[s], column, values[s])
        raise ValueError(f"{name}, line {lines[s]}: column {column!r} holds {values[s]!r}, "
                         f"not a finite number")
    return out


def _target_column(rows, lines, k, column, name):
    values = [row[k].strip() for row in rows]
    for s, v in enumerate(values):
        if v.lower() in MISSING_VALUES:
            raise _missing(name, lines[s], column, v)
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        out = np.array([float(v) for v in values])
    except ValueError:
        return np.array(values, dtype=str)
    return _numeric_column(rows, lines, k, column, name) if not np.isfinite(out).all() else out


def _missing(name, line, column, value):
    shown = "an empty field" if not value else repr(value)
    return ValueError(f"{name}, line {line}: column {column!r} has a missing value "
                      f"({shown}); fill it in or drop the row")


def _listing(names, limit=12):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _did_you_mean(wanted, header):
    close = [c for c in header if c.lower() == str(wanted).lower()] or \
        difflib.get_close_matches(wanted, header, n=3)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""

