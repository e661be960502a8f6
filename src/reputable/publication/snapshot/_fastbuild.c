/*
 * _fastbuild: compiled helpers of the snapshot build (optional accelerator).
 *
 * The per-host work of a big IPv4 list -- parsing each dotted quad into the packed u64
 * host key (address << 32 | atom) and sorting those keys -- in C. build.py keeps the
 * Python code as the fallback; tests/publication/snapshot/test_fastbuild.py checks that
 * both give identical sections.
 *
 * Functions:
 *   pack_hosts(subjects, first_atom) -> bytes   native u64 keys, subject i gets atom first+i;
 *                                                OSError on a text inet_aton(3) refuses, as
 *                                                socket.inet_aton raises
 *   sort_u64(buffer)                             sorts a writable buffer of u64 in place
 *                                                (LSD radix sort, GIL released)
 *   split_hosts(hosts, starts, busy)             sorted keys -> u32 addresses, u32 atoms, u32
 *                                                interval (bisect_right of starts), u8 flag
 *                                                (the Python loop must see the host)
 *   take_u32(table, index)                       bytes of native u32 table[index[i]] for each i;
 *                                                IndexError past the table's end
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *pack_hosts(PyObject *module, PyObject *args) {
    PyObject *subjects;
    unsigned long long first;
    if (!PyArg_ParseTuple(args, "OK", &subjects, &first)) return NULL;
    PyObject *seq = PySequence_Fast(subjects, "pack_hosts: subjects must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (first + (unsigned long long)n > 0x100000000ULL) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_OverflowError, "pack_hosts: atom ids past 2**32");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint64_t));
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    uint64_t *keys = (uint64_t *)PyBytes_AS_STRING(out);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(items[i], &size);
        if (text == NULL) goto fail;
        if ((Py_ssize_t)strlen(text) != size) {
            PyErr_SetString(PyExc_ValueError, "embedded null character");
            goto fail;
        }
        struct in_addr addr;
        if (inet_aton(text, &addr) == 0) {  /* the same call and message as socket.inet_aton */
            PyErr_SetString(PyExc_OSError, "illegal IP address string passed to inet_aton");
            goto fail;
        }
        keys[i] = ((uint64_t)ntohl(addr.s_addr) << 32) | (uint64_t)(first + (uint64_t)i);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

/* LSD radix sort by 16-bit digits; a digit every key shares is skipped (its pass would
 * copy the array unchanged). */
static int radix_sort(uint64_t *keys, size_t n) {
    if (n < 2) return 0;
    uint64_t *tmp = malloc(n * sizeof(uint64_t));
    size_t *counts = calloc(4 * 65536, sizeof(size_t));
    if (tmp == NULL || counts == NULL) {
        free(tmp);
        free(counts);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        for (int d = 0; d < 4; d++) counts[d * 65536 + ((k >> (16 * d)) & 0xFFFF)]++;
    }
    uint64_t *src = keys, *dst = tmp;
    for (int d = 0; d < 4; d++) {
        size_t *count = counts + d * 65536;
        if (count[(src[0] >> (16 * d)) & 0xFFFF] == n) continue;
        size_t total = 0;
        for (size_t b = 0; b < 65536; b++) {
            size_t c = count[b];
            count[b] = total;
            total += c;
        }
        for (size_t i = 0; i < n; i++) dst[count[(src[i] >> (16 * d)) & 0xFFFF]++] = src[i];
        uint64_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != keys) memcpy(keys, src, n * sizeof(uint64_t));
    free(tmp);
    free(counts);
    return 0;
}

static PyObject *sort_u64(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE | PyBUF_FORMAT) != 0) return NULL;
    if (view.itemsize != sizeof(uint64_t) || view.format == NULL ||
        (strcmp(view.format, "Q") != 0 && strcmp(view.format, "L") != 0)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "sort_u64: needs a writable buffer of u64 ('Q')");
        return NULL;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = radix_sort((uint64_t *)view.buf, (size_t)(view.len / (Py_ssize_t)sizeof(uint64_t)));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* Split the sorted host keys: their addresses, their atoms, the range interval each falls in
 * (bisect_right of the sorted starts: interval index + 1) and a flag for the hosts the
 * Python loop must see -- in a busy interval, or sharing their address with a neighbour. */
static PyObject *split_hosts(PyObject *module, PyObject *args) {
    Py_buffer hosts, starts, busy;
    if (!PyArg_ParseTuple(args, "y*y*y*", &hosts, &starts, &busy)) return NULL;
    PyObject *result = NULL;
    size_t n = (size_t)hosts.len / sizeof(uint64_t), m = (size_t)starts.len / sizeof(uint32_t);
    if (hosts.len % sizeof(uint64_t) || starts.len % sizeof(uint32_t) ||
        (size_t)busy.len != m + 1) {
        PyErr_SetString(PyExc_ValueError, "split_hosts: u64 hosts, u32 starts, busy of len+1");
        goto done;
    }
    PyObject *addr_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    PyObject *atom_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    PyObject *where_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    PyObject *flag_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (addr_b && atom_b && where_b && flag_b) {
        const uint64_t *key = hosts.buf;
        const uint32_t *start = starts.buf;
        const unsigned char *busy_at = busy.buf;
        uint32_t *addr = (uint32_t *)PyBytes_AS_STRING(addr_b);
        uint32_t *atom = (uint32_t *)PyBytes_AS_STRING(atom_b);
        uint32_t *where = (uint32_t *)PyBytes_AS_STRING(where_b);
        unsigned char *flag = (unsigned char *)PyBytes_AS_STRING(flag_b);
        size_t w = 0;
        int unsorted = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t a = (uint32_t)(key[i] >> 32);
            if (i > 0 && a < addr[i - 1]) {
                unsorted = 1;
                break;
            }
            while (w < m && start[w] <= a) w++;
            addr[i] = a;
            atom[i] = (uint32_t)key[i];
            where[i] = (uint32_t)w;
            flag[i] = busy_at[w] != 0;
        }
        if (unsorted) {
            PyErr_SetString(PyExc_ValueError, "split_hosts: hosts not sorted");
        } else {
            for (size_t i = 1; i < n; i++)
                if (addr[i] == addr[i - 1]) flag[i] = flag[i - 1] = 1;
            result = PyTuple_Pack(4, addr_b, atom_b, where_b, flag_b);
        }
    }
    Py_XDECREF(addr_b);
    Py_XDECREF(atom_b);
    Py_XDECREF(where_b);
    Py_XDECREF(flag_b);
done:
    PyBuffer_Release(&hosts);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&busy);
    return result;
}

/* table[index[i]] for every i, both native u32 buffers: `array("I", map(table.__getitem__,
 * index))` without an int object per item. */
static PyObject *take_u32(PyObject *module, PyObject *args) {
    Py_buffer table, index;
    if (!PyArg_ParseTuple(args, "y*y*", &table, &index)) return NULL;
    PyObject *out = NULL;
    size_t m = (size_t)table.len / sizeof(uint32_t), n = (size_t)index.len / sizeof(uint32_t);
    if (table.len % sizeof(uint32_t) || index.len % sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "take_u32: needs u32 buffers");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(uint32_t)));
    if (out == NULL) goto done;
    const uint32_t *from = table.buf, *at = index.buf;
    uint32_t *dst = (uint32_t *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < n; i++) {
        if (at[i] >= m) {
            Py_CLEAR(out);
            PyErr_SetString(PyExc_IndexError, "take_u32: index out of range");
            goto done;
        }
        dst[i] = from[at[i]];
    }
done:
    PyBuffer_Release(&table);
    PyBuffer_Release(&index);
    return out;
}

static PyMethodDef methods[] = {
    {"take_u32", take_u32, METH_VARARGS,
     "take_u32(table, index) -> bytes of native u32 table[index[i]]"},
    {"split_hosts", split_hosts, METH_VARARGS,
     "split_hosts(hosts, starts, busy) -> (addresses, atoms, where, flags) as bytes"},
    {"pack_hosts", pack_hosts, METH_VARARGS,
     "pack_hosts(subjects, first_atom) -> bytes of native u64 (address << 32 | atom)"},
    {"sort_u64", sort_u64, METH_O, "sort_u64(buffer) -> None: sort a buffer of u64 in place"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastbuild", "Compiled helpers of the snapshot build.", -1, methods,
};

PyMODINIT_FUNC PyInit__fastbuild(void) { return PyModule_Create(&module); }
