# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
# cdivision matters: _floordiv below corrects C truncating division by hand.
"""Native feature hashing: MurmurHash3 x86_32, one-pass tokenize + hash, batch matrices.

Imported as ``edgerec.features._hashing_native``; the public API is
``edgerec.features.hashing``. This file only loops. Everything that validates or writes a
message lives in Python (``edgerec.features.values``): values off the fast path are handed to a Python callback, which
either returns what the hash must see or raises the precise error.

Each batch call works in chunks (256 articles, 2048 strings), each in two phases:

1. with the GIL: walk the Python objects and collect, per (row, field), a pointer to the
   bytes the hash must see (ASCII ``str`` data is used in place and its object is held
   until hashed; anything else comes back from the Python callback as ``bytes``, kept
   alive in a list);
2. without the GIL: tokenize and hash straight into the int32 output buffer, while the
   chunk's data is still in cache. No Python object is created per token.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from libc.math cimport floor, isfinite
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    const char* PyUnicode_AsUTF8AndSize(object o, Py_ssize_t* size) except NULL
    bint PyUnicode_CheckExact(object o)
    bint PyUnicode_Check(object o)
    bint PyDict_CheckExact(object o)
    bint PyList_CheckExact(object o)
    bint PyTuple_CheckExact(object o)
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    # A pure table lookup in CPython's Unicode database: safe without the GIL.
    bint Py_UNICODE_ISALNUM(Py_UCS4 ch) nogil


cdef enum:
    KIND_CATEGORICAL = 0
    KIND_TEXT = 1
    KIND_LIST = 2
    KIND_TIME = 3
    BUCKET_HOUR = 0
    BUCKET_WEEKDAY = 1

# Same bounds as edgerec.features.values (years 1..9999); values outside go to the callback.
cdef double MIN_TIME = -62135596800.0
cdef double MAX_TIME = 253402300800.0

# ASCII word characters, mapped to themselves (WORD_RAW) or lowercased (WORD_LOWER);
# 0 marks a separator.
cdef uint8_t WORD_RAW[128]
cdef uint8_t WORD_LOWER[128]
for _c in range(128):
    WORD_RAW[_c] = _c if chr(_c).isalnum() else 0
    WORD_LOWER[_c] = ord(chr(_c).lower()) if chr(_c).isalnum() else 0


# ------------------------------------------------------------------------ murmur3
cdef inline uint32_t _rotl32(uint32_t x, int r) noexcept nogil:
    return (x << r) | (x >> (32 - r))


cdef inline uint32_t _murmur3_cont(uint32_t h, const uint8_t* data, Py_ssize_t n,
                                  Py_ssize_t total) noexcept nogil:
    """MurmurHash3 x86_32 continued from state ``h`` (the state after some whole 4-byte
    blocks) over ``data[:n]``, finalized for a message of ``total`` bytes."""
    cdef uint32_t k
    cdef uint32_t c1 = 0xCC9E2D51U
    cdef uint32_t c2 = 0x1B873593U
    cdef Py_ssize_t i
    cdef Py_ssize_t nblocks = n // 4
    for i in range(nblocks):
        k = (<uint32_t>data[4 * i] | (<uint32_t>data[4 * i + 1] << 8)
             | (<uint32_t>data[4 * i + 2] << 16) | (<uint32_t>data[4 * i + 3] << 24))
        k *= c1
        k = _rotl32(k, 15)
        k *= c2
        h ^= k
        h = _rotl32(h, 13)
        h = h * 5 + 0xE6546B64U
    cdef const uint8_t* tail = data + nblocks * 4
    k = 0
    cdef Py_ssize_t rem = n & 3
    if rem == 3:
        k ^= <uint32_t>tail[2] << 16
    if rem >= 2:
        k ^= <uint32_t>tail[1] << 8
    if rem >= 1:
        k ^= <uint32_t>tail[0]
        k *= c1
        k = _rotl32(k, 15)
        k *= c2
        h ^= k
    h ^= <uint32_t>total
    h ^= h >> 16
    h *= 0x85EBCA6BU
    h ^= h >> 13
    h *= 0xC2B2AE35U
    h ^= h >> 16
    return h


cdef inline uint32_t _murmur3(const uint8_t* data, Py_ssize_t n, uint32_t seed) noexcept nogil:
    return _murmur3_cont(seed, data, n, n)


cdef inline uint32_t _blocks_state(const uint8_t* data, Py_ssize_t n, uint32_t h) noexcept nogil:
    """The murmur state after the whole 4-byte blocks of ``data[:n]``."""
    cdef uint32_t k
    cdef Py_ssize_t i
    for i in range(n // 4):
        k = (<uint32_t>data[4 * i] | (<uint32_t>data[4 * i + 1] << 8)
             | (<uint32_t>data[4 * i + 2] << 16) | (<uint32_t>data[4 * i + 3] << 24))
        k *= 0xCC9E2D51U
        k = _rotl32(k, 15)
        k *= 0x1B873593U
        h ^= k
        h = _rotl32(h, 13)
        h = h * 5 + 0xE6546B64U
    return h


cdef extern from *:
    ctypedef unsigned long long uint64_t
    ctypedef unsigned long long uint128_t "__uint128_t"


cdef inline uint64_t _fastmod_magic(uint32_t d) noexcept nogil:
    # Lemire, Kaser & Kurz, "Faster remainder by direct computation" (2019): exact for
    # every 32-bit numerator and divisor; replaces a hardware division per token.
    return <uint64_t>0xFFFFFFFFFFFFFFFFULL // d + 1


cdef inline uint32_t _fastmod(uint32_t a, uint64_t magic, uint32_t d) noexcept nogil:
    cdef uint64_t low = magic * a
    return <uint32_t>((<uint128_t>low * d) >> 64)


def murmur3_32(bytes data not None, uint32_t seed):
    """Unsigned MurmurHash3 x86_32 of ``data`` (the facade makes it signed)."""
    return _murmur3(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), seed)


# ------------------------------------------------------------------------ hash_strings
DEF CHUNK = 2048  # strings per GIL-free burst: pointers stay in L1, data still in cache
DEF CHUNK_ROWS = 256  # articles per burst in featurize, for the same reason


def hash_strings(list strings not None, uint32_t seed, uint32_t n_buckets,
                 int32_t[::1] out):
    """Bucket ids of ``strings`` into ``out``; returns -1, or the index of a string that is
    not a ``str`` or not encodable as UTF-8 (the facade turns that into a message).

    Works in chunks: collect pointers with the GIL, then hash the chunk without it, while
    its string data is still in cache.
    """
    cdef Py_ssize_t n = PyList_GET_SIZE(strings)
    cdef Py_ssize_t start, stop, i
    cdef uint32_t m = n_buckets - 1
    cdef uint64_t magic = _fastmod_magic(m)
    cdef const char* ptrs[CHUNK]
    cdef Py_ssize_t lens[CHUNK]
    cdef object s
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        for i in range(start, stop):
            s = <object>PyList_GET_ITEM(strings, i)
            if not PyUnicode_Check(s):  # by type: never trusts a faked __class__
                return i
            if PyUnicode_IS_ASCII(s):
                ptrs[i - start] = <const char*>PyUnicode_DATA(s)
                lens[i - start] = PyUnicode_GET_LENGTH(s)
            else:
                try:  # cached on the str object; a lone surrogate raises
                    ptrs[i - start] = PyUnicode_AsUTF8AndSize(s, &lens[i - start])
                except UnicodeEncodeError:
                    return i
        with nogil:
            for i in range(start, stop):
                out[i] = <int32_t>(1 + _fastmod(
                    _murmur3(<const uint8_t*>ptrs[i - start], lens[i - start], seed), magic, m))
    return -1


# ------------------------------------------------------------------------ featurize
cdef class Plan:
    """A FeatureSpec compiled to C arrays (built once per spec by the facade)."""

    cdef int n_fields
    cdef uint32_t seed
    cdef uint32_t n_minus_1
    cdef Py_ssize_t n_segments      # segments reserved per row
    cdef Py_ssize_t max_prefix
    cdef uint64_t magic             # fastmod constant for n_minus_1
    cdef uint32_t* prefix_state     # murmur state after the prefix's whole blocks
    cdef Py_ssize_t* prefix_skip    # bytes of the prefix those blocks cover
    cdef Py_ssize_t* prefix_len
    cdef int* kind
    cdef int* slots
    cdef int* column                # first output column of each field
    cdef int* segment               # first segment of each field within a row
    cdef int* lower                 # ASCII fast path lowercases (normalize=True)
    cdef int* required
    cdef Py_ssize_t* max_chars
    cdef int* bucket_code           # time_bucket: field * 2 + j -> BUCKET_*
    cdef int32_t* hour_ids          # field * 24 + hour
    cdef int32_t* weekday_ids       # field * 7 + weekday
    cdef uint32_t* mark_lo          # combining-mark ranges (sorted, inclusive): word
    cdef uint32_t* mark_hi          # characters besides isalnum()
    cdef Py_ssize_t n_marks
    cdef list names                 # field names (str), dict keys of the fast path
    cdef list prefixes              # name + b"\x1f" per field (bytes)

    def __cinit__(self, list fields, uint32_t seed, uint32_t n_buckets, tuple marks):
        cdef int nf = len(fields)
        cdef int f, j
        cdef Py_ssize_t i
        self.n_marks = len(marks)
        self.mark_lo = <uint32_t*>malloc(max(self.n_marks, 1) * sizeof(uint32_t))
        self.mark_hi = <uint32_t*>malloc(max(self.n_marks, 1) * sizeof(uint32_t))
        if self.mark_lo == NULL or self.mark_hi == NULL:
            raise MemoryError()
        for i, (lo, hi) in enumerate(marks):
            self.mark_lo[i] = lo
            self.mark_hi[i] = hi
        self.n_fields = nf
        self.seed = seed
        self.n_minus_1 = n_buckets - 1
        self.magic = _fastmod_magic(self.n_minus_1)
        self.prefix_state = <uint32_t*>malloc(nf * sizeof(uint32_t))
        self.prefix_skip = <Py_ssize_t*>malloc(nf * sizeof(Py_ssize_t))
        self.prefix_len = <Py_ssize_t*>malloc(nf * sizeof(Py_ssize_t))
        if self.prefix_state == NULL or self.prefix_skip == NULL or self.prefix_len == NULL:
            raise MemoryError()
        self.kind = <int*>malloc(nf * sizeof(int))
        self.slots = <int*>malloc(nf * sizeof(int))
        self.column = <int*>malloc(nf * sizeof(int))
        self.segment = <int*>malloc(nf * sizeof(int))
        self.lower = <int*>malloc(nf * sizeof(int))
        self.required = <int*>malloc(nf * sizeof(int))
        self.max_chars = <Py_ssize_t*>malloc(nf * sizeof(Py_ssize_t))
        self.bucket_code = <int*>malloc(nf * 2 * sizeof(int))
        self.hour_ids = <int32_t*>malloc(nf * 24 * sizeof(int32_t))
        self.weekday_ids = <int32_t*>malloc(nf * 7 * sizeof(int32_t))
        if (self.kind == NULL or self.slots == NULL or self.column == NULL
                or self.segment == NULL or self.lower == NULL or self.required == NULL
                or self.max_chars == NULL or self.bucket_code == NULL
                or self.hour_ids == NULL or self.weekday_ids == NULL):
            raise MemoryError()
        self.names = []
        self.prefixes = []
        kinds = {"categorical": KIND_CATEGORICAL, "text": KIND_TEXT, "list": KIND_LIST,
                 "time_bucket": KIND_TIME}
        cdef int col = 0
        cdef int seg = 0
        self.max_prefix = 0
        for f, fs in enumerate(fields):
            prefix = fs.prefix
            self.names.append(fs.name)
            self.prefixes.append(prefix)
            self.max_prefix = max(self.max_prefix, len(prefix))
            self.prefix_len[f] = len(prefix)
            self.prefix_skip[f] = (len(prefix) // 4) * 4
            self.prefix_state[f] = _blocks_state(<const uint8_t*>PyBytes_AS_STRING(prefix),
                                                 len(prefix), seed)
            self.kind[f] = kinds[fs.kind]
            self.slots[f] = fs.slots
            self.column[f] = col
            self.segment[f] = seg
            self.lower[f] = 1 if fs.normalize else 0
            self.required[f] = 1 if fs.required else 0
            self.max_chars[f] = fs.max_chars
            col += fs.slots
            seg += fs.slots if self.kind[f] == KIND_LIST else 1
            for j, b in enumerate(fs.buckets):
                self.bucket_code[f * 2 + j] = BUCKET_HOUR if b == "hour" else BUCKET_WEEKDAY
            for j in range(24):
                self.hour_ids[f * 24 + j] = self._bucket(prefix + b"hour=%d" % j)
            for j in range(7):
                self.weekday_ids[f * 7 + j] = self._bucket(prefix + b"weekday=%d" % j)
        self.n_segments = seg

    cdef int32_t _bucket(self, bytes data):
        return <int32_t>(1 + _murmur3(<const uint8_t*>PyBytes_AS_STRING(data),
                                      PyBytes_GET_SIZE(data), self.seed) % self.n_minus_1)

    cdef inline int32_t finish(self, int f, const uint8_t* scratch, Py_ssize_t total) noexcept nogil:
        """Bucket id of ``scratch[:total]``, which starts with field ``f``'s prefix."""
        cdef Py_ssize_t skip = self.prefix_skip[f]
        cdef uint32_t h = _murmur3_cont(self.prefix_state[f], scratch + skip, total - skip, total)
        return <int32_t>(1 + _fastmod(h, self.magic, self.n_minus_1))

    def __dealloc__(self):
        free(self.prefix_state)
        free(self.prefix_skip)
        free(self.prefix_len)
        free(self.mark_lo)
        free(self.mark_hi)
        free(self.kind)
        free(self.slots)
        free(self.column)
        free(self.segment)
        free(self.lower)
        free(self.required)
        free(self.max_chars)
        free(self.bucket_code)
        free(self.hour_ids)
        free(self.weekday_ids)


cdef inline bint _fast_str(object v, Py_ssize_t max_chars) noexcept:
    return (PyUnicode_CheckExact(v) and PyUnicode_IS_ASCII(v)
            and PyUnicode_GET_LENGTH(v) <= max_chars)


cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline Py_ssize_t _copy_value(const uint8_t* s, Py_ssize_t n, bint lower,
                                   uint8_t* dst) noexcept nogil:
    """Copy a whole value after the prefix, ASCII-lowercased when ``lower``."""
    cdef Py_ssize_t i
    cdef uint8_t c
    if lower:
        for i in range(n):
            c = s[i]
            dst[i] = c + 32 if 65 <= c <= 90 else c
    else:
        memcpy(dst, s, n)
    return n


cdef inline bint _is_mark(Plan plan, Py_UCS4 cp) noexcept nogil:
    """Binary search of the combining-mark ranges (reached only for non-ASCII non-alnum)."""
    cdef Py_ssize_t lo = 0
    cdef Py_ssize_t hi = plan.n_marks - 1
    cdef Py_ssize_t mid
    while lo <= hi:
        mid = (lo + hi) // 2
        if cp < plan.mark_lo[mid]:
            hi = mid - 1
        elif cp > plan.mark_hi[mid]:
            lo = mid + 1
        else:
            return True
    return False


cdef int _tokenize_into(Plan plan, int f, const uint8_t* s, Py_ssize_t n, bint lower,
                        uint8_t* scratch, int32_t* out) noexcept nogil:
    """Split valid UTF-8 into runs of word characters and hash up to the field's slots.

    ``scratch`` already holds the field prefix; each token's bytes are written after it
    while scanning (lowercased through a table), so a byte is read once.
    """
    cdef const uint8_t* table = &WORD_RAW[0]
    if lower:
        table = &WORD_LOWER[0]
    cdef Py_ssize_t plen = plan.prefix_len[f]
    cdef Py_ssize_t w = plen
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t width
    cdef int limit = plan.slots[f]
    cdef int count = 0
    cdef uint8_t c
    cdef uint8_t t
    cdef Py_UCS4 cp
    while i < n:
        c = s[i]
        if c < 0x80:
            t = table[c]
            if t:
                scratch[w] = t
                w += 1
                i += 1
                continue
            width = 1
        else:
            if c < 0xE0:
                cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F)
                width = 2
            elif c < 0xF0:
                cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)
                width = 3
            else:
                cp = (((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12)
                      | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F))
                width = 4
            if Py_UNICODE_ISALNUM(cp) or _is_mark(plan, cp):
                memcpy(scratch + w, s + i, width)
                w += width
                i += width
                continue
        # a separator ends the current token, if any
        if w > plen:
            out[count] = plan.finish(f, scratch, w)
            count += 1
            if count == limit:
                return count
            w = plen
        i += width
    if w > plen:
        out[count] = plan.finish(f, scratch, w)
        count += 1
    return count


cdef void _release(PyObject** owner, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        Py_XDECREF(owner[i])
        owner[i] = NULL


def featurize(Plan plan not None, list articles not None, object slow, int32_t[:, ::1] out):
    """Fill ``out`` (N, F), zeroed by the caller.

    ``slow(row, article, field_index)`` is called for every value off the fast path and
    returns None (padding), bytes, a list of bytes (list fields) or a float (time fields),
    or raises.
    """
    cdef Py_ssize_t n = PyList_GET_SIZE(articles)
    cdef Py_ssize_t S = plan.n_segments
    cdef Py_ssize_t total = max(min(n, CHUNK_ROWS) * S, 1)
    cdef const uint8_t** ptr = <const uint8_t**>malloc(total * sizeof(uint8_t*))
    cdef Py_ssize_t* length = <Py_ssize_t*>malloc(total * sizeof(Py_ssize_t))
    cdef uint8_t* lower = <uint8_t*>malloc(total * sizeof(uint8_t))
    cdef double* when = <double*>malloc(total * sizeof(double))
    cdef const uint8_t** prefix = <const uint8_t**>malloc(plan.n_fields * sizeof(uint8_t*))
    cdef Py_ssize_t* plen = <Py_ssize_t*>malloc(plan.n_fields * sizeof(Py_ssize_t))
    cdef uint8_t* scratch = NULL
    cdef Py_ssize_t scratch_size = 0
    cdef list keep  # bytes returned by the callback, alive until phase 2 ends
    # Fast-path str objects are borrowed from the articles; a user Mapping's .get() (slow
    # path) could drop them before phase 2 reads their data, so each one is held here.
    cdef PyObject** owner = <PyObject**>malloc(total * sizeof(PyObject*))
    cdef Py_ssize_t held = 0
    cdef Py_ssize_t start, stop, r, base, i, j, k, m, longest
    cdef int f, kind, used
    cdef bint fast
    cdef PyObject* vp
    cdef object article, v, item, res
    cdef long long whole
    cdef int overflow
    cdef double t
    cdef int64_t secs, days
    cdef int32_t* row
    try:
        if (ptr == NULL or length == NULL or lower == NULL or when == NULL
                or prefix == NULL or plen == NULL or owner == NULL):
            raise MemoryError()
        for f in range(plan.n_fields):
            p = plan.prefixes[f]
            prefix[f] = <const uint8_t*>PyBytes_AS_STRING(p)
            plen[f] = PyBytes_GET_SIZE(p)
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            keep = []
            longest = 0
            for i in range((stop - start) * S):
                length[i] = -1
                owner[i] = NULL
            held = (stop - start) * S

            # Phase 1 (GIL): point at the bytes each (row, field) hashes.
            for r in range(start, stop):
                article = <object>PyList_GET_ITEM(articles, r)
                for f in range(plan.n_fields):
                    base = (r - start) * S + plan.segment[f]
                    kind = plan.kind[f]
                    fast = False
                    if PyDict_CheckExact(article):
                        vp = PyDict_GetItem(article, plan.names[f])
                        if vp == NULL or <object>vp is None:
                            fast = not plan.required[f]  # padding, unless required
                        else:
                            v = <object>vp
                            if kind == KIND_CATEGORICAL or kind == KIND_TEXT:
                                if _fast_str(v, plan.max_chars[f]):
                                    m = PyUnicode_GET_LENGTH(v)
                                    if m > 0 or not plan.required[f]:
                                        fast = True
                                        if m > 0:
                                            ptr[base] = <const uint8_t*>PyUnicode_DATA(v)
                                            owner[base] = <PyObject*>v
                                            Py_INCREF(v)
                                            length[base] = m
                                            lower[base] = plan.lower[f]
                                            longest = max(longest, m)
                            elif kind == KIND_LIST:
                                if PyList_CheckExact(v) or PyTuple_CheckExact(v):
                                    m = PyList_GET_SIZE(v) if PyList_CheckExact(v) else PyTuple_GET_SIZE(v)
                                    fast = True
                                    used = 0
                                    for j in range(m):
                                        if used == plan.slots[f]:
                                            break
                                        if PyList_CheckExact(v):
                                            item = <object>PyList_GET_ITEM(v, j)
                                        else:
                                            item = <object>PyTuple_GET_ITEM(v, j)
                                        if not _fast_str(item, plan.max_chars[f]):
                                            fast = False
                                            break
                                        k = PyUnicode_GET_LENGTH(item)
                                        if k > 0:
                                            ptr[base + used] = <const uint8_t*>PyUnicode_DATA(item)
                                            owner[base + used] = <PyObject*>item
                                            Py_INCREF(item)
                                            length[base + used] = k
                                            lower[base + used] = plan.lower[f]
                                            longest = max(longest, k)
                                            used += 1
                                    if not fast:
                                        for j in range(plan.slots[f]):
                                            length[base + j] = -1
                                    elif used == 0 and plan.required[f]:
                                        fast = False
                            else:  # KIND_TIME
                                if PyFloat_CheckExact(v):
                                    t = PyFloat_AS_DOUBLE(v)
                                    fast = isfinite(t) and MIN_TIME <= t < MAX_TIME
                                elif PyLong_CheckExact(v):
                                    whole = PyLong_AsLongLongAndOverflow(v, &overflow)
                                    t = <double>whole
                                    fast = overflow == 0 and MIN_TIME <= t < MAX_TIME
                                if fast:
                                    when[base] = t
                                    length[base] = 0
                    if fast:
                        continue
                    res = slow(r, article, f)
                    if res is None:
                        continue
                    if kind == KIND_TIME:
                        when[base] = <double>res
                        length[base] = 0
                    elif kind == KIND_LIST:
                        for j, item in enumerate(<list>res):
                            keep.append(item)
                            ptr[base + j] = <const uint8_t*>PyBytes_AS_STRING(item)
                            length[base + j] = PyBytes_GET_SIZE(item)
                            lower[base + j] = 0
                            longest = max(longest, length[base + j])
                    else:
                        keep.append(res)
                        ptr[base] = <const uint8_t*>PyBytes_AS_STRING(res)
                        length[base] = PyBytes_GET_SIZE(res)
                        lower[base] = 0  # the callback already normalized it
                        longest = max(longest, length[base])

            if plan.max_prefix + longest + 1 > scratch_size:
                free(scratch)
                scratch_size = plan.max_prefix + longest + 1
                scratch = <uint8_t*>malloc(scratch_size)
                if scratch == NULL:
                    raise MemoryError()

            # Phase 2 (no GIL): tokenize and hash into the output rows.
            with nogil:
                for r in range(start, stop):
                    row = &out[r, 0]
                    for f in range(plan.n_fields):
                        base = (r - start) * S + plan.segment[f]
                        kind = plan.kind[f]
                        if kind == KIND_TIME:  # whole UTC seconds, floor division
                            if length[base] >= 0:
                                secs = <int64_t>floor(when[base])
                                days = _floordiv(secs, 86400)
                                for j in range(plan.slots[f]):
                                    if plan.bucket_code[f * 2 + j] == BUCKET_HOUR:
                                        row[plan.column[f] + j] = plan.hour_ids[
                                            f * 24 + (secs - days * 86400) // 3600]
                                    else:
                                        row[plan.column[f] + j] = plan.weekday_ids[
                                            f * 7 + (days + 3 - _floordiv(days + 3, 7) * 7)]
                            continue
                        if length[base] < 0:
                            continue  # missing: padding (list items fill from the left)
                        memcpy(scratch, prefix[f], plen[f])
                        if kind == KIND_TEXT:
                            _tokenize_into(plan, f, ptr[base], length[base], lower[base], scratch,
                                           row + plan.column[f])
                        else:  # categorical (1 segment) or list (up to slots segments)
                            for j in range(plan.slots[f] if kind == KIND_LIST else 1):
                                if length[base + j] < 0:
                                    break
                                k = plen[f] + _copy_value(ptr[base + j], length[base + j],
                                                          lower[base + j], scratch + plen[f])
                                row[plan.column[f] + j] = plan.finish(f, scratch, k)
            _release(owner, held)
            held = 0
    finally:
        if owner != NULL:
            _release(owner, held)
        free(owner)
        free(ptr)
        free(length)
        free(lower)
        free(when)
        free(prefix)
        free(plen)
        free(scratch)
