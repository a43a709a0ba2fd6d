# Arrays handed to a kernel as ndarrays and checked through NumPy's C API, for the entry
# points that every train() call makes several times (train_epoch, all_finite, target_kind).
#
# A typed memoryview argument checks the same things through the buffer protocol: NumPy fills
# in a format string, Cython parses it and builds a memoryview object. After an idle spell, with
# the caches refilled by other processes (as between benchmarks/compare.py's contenders), nine
# of them cost 35 us a call against 13 for nine ndarrays (an empty Python call: 7), measured
# on the 2-core machine on 2026-11-24; 2-8-1's whole epoch is 0.7 ms.
cimport numpy as cnp
from cython cimport floating
from libc.math cimport isfinite

cdef enum:
    ANY_FLOAT = -1                     # check_array's typenum: float32 or float64


cdef inline int check_array(cnp.ndarray arr, int typenum, int ndim, bint writeable,
                            str name) except -1:
    """arr's type number, after checking that arr is C-contiguous, aligned, in native byte
    order, of ndim dimensions (any number for -1), of typenum (ANY_FLOAT: NPY_FLOAT or
    NPY_DOUBLE) and, if asked, writeable: what a memoryview argument would check, and
    alignment besides (memoryviews do not check it; the Python layer's arrays are aligned,
    see cbackprop/_config.py as_float_array). Raises ValueError naming arr."""
    cdef int kind = cnp.PyArray_TYPE(arr)
    if typenum == ANY_FLOAT:
        if kind != cnp.NPY_FLOAT and kind != cnp.NPY_DOUBLE:
            raise ValueError(f"{name} must be float32 or float64, got {arr.dtype}")
    elif kind != typenum and not cnp.PyArray_EquivTypenums(kind, typenum):
        raise ValueError(f"{name} must be {cnp.PyArray_DescrFromType(typenum)}, got "
                         f"{arr.dtype}")
    if ndim >= 0 and cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got {cnp.PyArray_NDIM(arr)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISBEHAVED_RO(arr):
        raise ValueError(f"{name} must be C-contiguous, aligned and in native byte order")
    if writeable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    return kind


cdef inline bint finite_values(const floating* values, Py_ssize_t n) noexcept nogil:
    """Whether none of values[0:n] is NaN or infinite: one branch-free, vectorised pass (the
    kernels that read X check it this way as they go, a block while it is in cache)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad |= not isfinite(values[i])
    return not bad
