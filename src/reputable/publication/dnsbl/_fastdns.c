/*
 * _fastdns: the compiled UDP packet loop of the DNSBL worker (optional accelerator).
 *
 * It answers the common queries of the IPv4 block zone end to end -- batched receive
 * (recvmmsg), question parsing, lookup in the snapshot's mapped u32 arrays, assembly of
 * A / TXT / NXDOMAIN+SOA / NODATA replies with EDNS0 OPT echo and TC truncation, batched
 * send (sendmmsg) -- byte for byte as wire.py's Responder.respond does.  Every packet it
 * does not fully handle (other zones, the apex, IPv6 lookups, odd flags, malformed
 * questions, access control, ...) is handed back to Python, which answers it with
 * Responder.respond.  tests/publication/dnsbl/test_fastpath.py checks both paths agree.
 *
 * Types:
 *   Engine(...)         one snapshot's tables + the IPv4 zone's constant pieces (immutable)
 *   Engine.respond(packet, max_size) -> (reply, counter slot) | None (= Python must answer)
 *   Loop(fd, batch)     per-socket receive/send buffers
 *   Loop.run(engine, counters, timeout_ms, handle) -> [(packet, address), ...] to answer in
 *                       Python; adds this batch's hits/misses to counters[0], counters[1].
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define T_A 1
#define T_SOA 6
#define T_TXT 16
#define T_OPT 41
#define T_IXFR 251
#define T_AXFR 252
#define T_ANY 255
#define C_IN 1
#define F_QR 0x8000
#define F_AA 0x0400
#define F_TC 0x0200
#define F_RD 0x0100
#define RC_NXDOMAIN 3
#define OUR_UDP_SIZE 1232
#define MAX_REPLY 4096   /* the largest dns.max_udp_answer the config accepts */
#define MAX_TXT_TEXT 4096 /* wire.py MAX_TXT_TEXT: TXT text after $ expansion */
#define RECV_SIZE 4096   /* as worker.py's recvfrom(4096) */
#define MAX_BATCH 256
#define MAX_ZONES 8
#define MAX_ATOMS 64
#define V_NONE 0u
#define V_EXCLUDED 0xFFFFFFFFu

enum { SLOT_HIT = 0, SLOT_MISS = 1 };

/* ---------------------------------------------------------------------------------------- */
/* Engine: one snapshot                                                                       */

enum {
    S_HOST_ADDR, S_HOST_VAL /* v4_host_dns */, S_RANGE_START, S_RANGE_VAL, S_VAL_INDEX, S_VAL_ATOMS,
    S_ATOM_CODE, S_TXT_OFF, S_TXT_LEN, S_STRINGS, S_COUNT
};

typedef struct {
    PyObject_HEAD
    Py_buffer buf[S_COUNT];
    int nbuf;
    const uint32_t *host_addr, *host_val, *range_start, *range_val;
    const uint32_t *val_index, *val_atoms, *atom_code, *txt_off, *txt_len;
    const uint8_t *strings;
    Py_ssize_t n_hosts, n_ranges, n_values, n_val_atoms, n_atoms, n_strings;
    uint8_t zone[256];      /* IPv4 block zone, lowercase wire format */
    int zone_len;
    uint8_t others[MAX_ZONES][256]; /* other zones: a name under one of them goes to Python */
    int other_len[MAX_ZONES];
    int n_others;
    uint32_t ttl, negative_ttl;
    uint8_t soa[600];       /* SOA RDATA: two names of at most 255 bytes + 20 */
    int soa_len;
    int max_udp;            /* dns.max_udp_answer */
    int amplification;      /* dns.max_amplification (0: off) */
    Py_buffer defer_buf;    /* overlay: sorted u32 addresses left to Python (snapshot/overlay.py) */
    const uint32_t *defer;
    Py_ssize_t n_defer;
} Engine;

static void Engine_dealloc(Engine *self) {
    for (int i = 0; i < self->nbuf; i++) PyBuffer_Release(&self->buf[i]);
    if (self->defer_buf.obj != NULL) PyBuffer_Release(&self->defer_buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int copy_wire(PyObject *obj, uint8_t *dst, int *len, int cap, const char *what) {
    char *data;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(obj, &data, &n) < 0) return -1;
    if (n < 1 || n > cap) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected 1-%d", what, n, cap);
        return -1;
    }
    memcpy(dst, data, (size_t)n);
    *len = (int)n;
    return 0;
}

/* Check the values named by the host and range arrays: index order, atom count, atom ids
 * and TXT bounds. Returns 0, or -1 with ValueError (or MemoryError) set. */
static int validate_values(const Engine *self) {
    Py_ssize_t n = self->n_values;
    uint8_t *seen = PyMem_Calloc((size_t)n / 8 + 1, 1);
    if (seen == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    const uint32_t *arrays[2] = {self->host_val, self->range_val};
    Py_ssize_t counts[2] = {self->n_hosts, self->n_ranges};
    for (int k = 0; k < 2; k++)
        for (Py_ssize_t i = 0; i < counts[k]; i++) {
            uint32_t v = arrays[k][i];
            if (v == V_EXCLUDED) continue;
            if (v >= (uint32_t)n) goto bad;
            seen[v >> 3] |= (uint8_t)(1u << (v & 7));
        }
    for (Py_ssize_t v = 0; v < n; v++) {
        if (!(seen[v >> 3] & (1u << (v & 7)))) continue;
        uint32_t lo = self->val_index[v], hi = self->val_index[v + 1];
        if (hi > (uint32_t)self->n_val_atoms || lo > hi || hi - lo > MAX_ATOMS) goto bad;
        for (uint32_t j = lo; j < hi; j++) {
            uint32_t atom = self->val_atoms[j];
            if (atom >= (uint32_t)self->n_atoms ||
                (Py_ssize_t)self->txt_off[atom] + (Py_ssize_t)self->txt_len[atom] >
                    self->n_strings)
                goto bad;
        }
    }
    PyMem_Free(seen);
    return 0;
bad:
    PyMem_Free(seen);
    PyErr_SetString(PyExc_ValueError, "snapshot sections hold an out-of-range index");
    return -1;
}

static int Engine_init(Engine *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"sections", "zone",          "others", "ttl", "negative_ttl",
                            "soa",      "max_udp",       "amplification", "defer", NULL};
    PyObject *sections, *zone, *others, *soa, *defer = NULL;
    unsigned long ttl, negative_ttl;
    int max_udp = 1232, amplification = 3;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OSOkkS|iiO", names, &sections, &zone, &others,
                                     &ttl, &negative_ttl, &soa, &max_udp, &amplification,
                                     &defer))
        return -1;
    if (max_udp < 512 || max_udp > MAX_REPLY || amplification < 0) {
        PyErr_Format(PyExc_ValueError, "max_udp must be 512-%d and amplification >= 0",
                     MAX_REPLY);
        return -1;
    }
    self->max_udp = max_udp;
    self->amplification = amplification;
    if (self->nbuf) {
        PyErr_SetString(PyExc_RuntimeError, "Engine is immutable");
        return -1;
    }
    PyObject *seq = PySequence_Fast(sections, "sections must be a sequence of buffers");
    if (seq == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != S_COUNT) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "expected %d sections", S_COUNT);
        return -1;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &self->buf[i], PyBUF_SIMPLE) <
            0) {
            Py_DECREF(seq);
            return -1;
        }
        self->nbuf++;
        if (i != S_STRINGS && (self->buf[i].len % 4 || ((uintptr_t)self->buf[i].buf) % 4)) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "section %d is not an aligned u32 array", i);
            return -1;
        }
    }
    Py_DECREF(seq);
#define U32(i) ((const uint32_t *)self->buf[i].buf)
#define N32(i) (self->buf[i].len / 4)
    self->host_addr = U32(S_HOST_ADDR);
    self->host_val = U32(S_HOST_VAL);
    self->n_hosts = N32(S_HOST_ADDR);
    self->range_start = U32(S_RANGE_START);
    self->range_val = U32(S_RANGE_VAL);
    self->n_ranges = N32(S_RANGE_START);
    self->val_index = U32(S_VAL_INDEX);
    self->n_values = N32(S_VAL_INDEX) - 1;
    self->val_atoms = U32(S_VAL_ATOMS);
    self->n_val_atoms = N32(S_VAL_ATOMS);
    self->atom_code = U32(S_ATOM_CODE);
    self->n_atoms = N32(S_ATOM_CODE);
    self->txt_off = U32(S_TXT_OFF);
    self->txt_len = U32(S_TXT_LEN);
    self->strings = (const uint8_t *)self->buf[S_STRINGS].buf;
    self->n_strings = self->buf[S_STRINGS].len;
    if (N32(S_HOST_VAL) != self->n_hosts || N32(S_RANGE_VAL) != self->n_ranges ||
        self->n_ranges < 1 || self->n_values < 1 || N32(S_TXT_OFF) != self->n_atoms ||
        N32(S_TXT_LEN) != self->n_atoms) {
        PyErr_SetString(PyExc_ValueError, "snapshot sections have inconsistent lengths");
        return -1;
    }
    /* Validate every index the hot path can reach once, so it needs no bounds checks. Only
     * the values the host and range arrays name (and their atoms) are read: the host array
     * names deduplicated answer values (v4_host_dns), so at ten million hosts of a few TXTs
     * the per-listing values and atoms -- there for the lookup API -- stay unread, and out
     * of every worker's resident memory (docs/benchmarks.md, "Snapshot layout (session 6)"). */
    if (validate_values(self) < 0) return -1;
    if (copy_wire(zone, self->zone, &self->zone_len, 255, "zone") < 0) return -1;
    PyObject *oseq = PySequence_Fast(others, "others must be a sequence of bytes");
    if (oseq == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(oseq) > MAX_ZONES) {
        Py_DECREF(oseq);
        PyErr_SetString(PyExc_ValueError, "too many zones");
        return -1;
    }
    self->n_others = (int)PySequence_Fast_GET_SIZE(oseq);
    for (int i = 0; i < self->n_others; i++) {
        if (copy_wire(PySequence_Fast_GET_ITEM(oseq, i), self->others[i], &self->other_len[i],
                      255, "other zone") < 0) {
            Py_DECREF(oseq);
            return -1;
        }
    }
    Py_DECREF(oseq);
    if (copy_wire(soa, self->soa, &self->soa_len, 600, "soa") < 0) return -1;
    if (defer != NULL && defer != Py_None) {
        if (PyObject_GetBuffer(defer, &self->defer_buf, PyBUF_SIMPLE) < 0) return -1;
        if (self->defer_buf.len % 4 || ((uintptr_t)self->defer_buf.buf) % 4) {
            PyErr_SetString(PyExc_ValueError, "defer must be an aligned u32 array");
            return -1;
        }
        self->defer = (const uint32_t *)self->defer_buf.buf;
        self->n_defer = self->defer_buf.len / 4;
        for (Py_ssize_t i = 1; i < self->n_defer; i++)
            if (self->defer[i] <= self->defer[i - 1]) {
                PyErr_SetString(PyExc_ValueError, "defer must be sorted and distinct");
                return -1;
            }
    }
    self->ttl = (uint32_t)ttl;
    self->negative_ttl = (uint32_t)negative_ttl;
    return 0;
#undef U32
#undef N32
}

/* ---------------------------------------------------------------------------------------- */
/* Answering one packet                                                                       */

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void wr16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

/* Skip an uncompressed name as wire.py's _parse_name does; -1 where it raises FormatError. */
static int skip_name(const uint8_t *p, int len, int pos, int *starts, int *nlabels) {
    int total = 0, n = 0;
    for (;;) {
        if (pos >= len) return -1;
        int l = p[pos];
        if (l == 0) {
            if (nlabels) *nlabels = n;
            return pos + 1;
        }
        if (l > 63) return -1;
        total += l + 1;
        if (total > 254) return -1;
        if (starts) starts[n] = pos;
        n++;
        pos += l + 1;
    }
}

/* True when the name ending at *end* (exclusive, after the root byte) ends with *zone* on a
 * label boundary (ASCII case-insensitive), as wire.py's _zone_of decides. */
static int under(const uint8_t *p, const int *starts, int nlabels, int name_start, int end,
                 const uint8_t *zone, int zlen) {
    int cut = end - zlen;
    if (cut < name_start) return 0;
    int boundary = 0;
    if (cut == end - 1) boundary = 1; /* root zone */
    for (int i = 0; i < nlabels && !boundary; i++)
        if (starts[i] == cut) boundary = 1;
    if (!boundary) return 0;
    for (int i = 0; i < zlen; i++)
        if (lower(p[cut + i]) != zone[i]) return 0;
    return 1;
}

static uint32_t v4_value(const Engine *e, uint32_t addr) {
    Py_ssize_t lo = 0, hi = e->n_hosts;
    while (lo < hi) { /* bisect_left */
        Py_ssize_t mid = (lo + hi) >> 1;
        if (e->host_addr[mid] < addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo < e->n_hosts && e->host_addr[lo] == addr) return e->host_val[lo];
    lo = 0;
    hi = e->n_ranges;
    while (lo < hi) { /* bisect_right */
        Py_ssize_t mid = (lo + hi) >> 1;
        if (addr < e->range_start[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo ? e->range_val[lo - 1] : V_NONE; /* range_start[0] == 0 in every snapshot */
}

typedef struct {
    uint8_t *out;
    int len, limit, over;
} Writer;

static inline void put(Writer *w, const void *src, int n) {
    if (w->over || w->len + n > w->limit) {
        w->over = 1;
        return;
    }
    memcpy(w->out + w->len, src, (size_t)n);
    w->len += n;
}

static inline void put_rr_head(Writer *w, uint16_t ptr, uint16_t type, uint32_t ttl, int rdlen) {
    uint8_t h[12];
    wr16(h, ptr);
    wr16(h + 2, type);
    wr16(h + 4, C_IN);
    wr32(h + 6, ttl);
    wr16(h + 10, (uint32_t)rdlen);
    put(w, h, 12);
}

/* Length of wire.py's expand(template, subject) (before the MAX_TXT_TEXT cut). */
static Py_ssize_t expanded_len(const uint8_t *t, Py_ssize_t n, int slen) {
    Py_ssize_t out = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (t[i] != '$') out++;
        else if (i + 1 < n && t[i + 1] == '$') {
            out++;
            i++;
        } else out += slen;
    }
    return out;
}

/* One TXT record: expand() then txt_rdata() of wire.py, written as it is produced. */
static void put_txt(Writer *w, const Engine *e, uint32_t atom, const uint8_t *subject, int slen) {
    const uint8_t *t = e->strings + e->txt_off[atom];
    Py_ssize_t n = e->txt_len[atom];
    Py_ssize_t text = expanded_len(t, n, slen);
    if (text > MAX_TXT_TEXT) text = MAX_TXT_TEXT;
    Py_ssize_t rdlen = text ? text + (text + 254) / 255 : 1;
    if (w->over || w->len + 12 + rdlen > w->limit) {
        w->over = 1;
        return;
    }
    put_rr_head(w, 0xC00C, T_TXT, e->ttl, (int)rdlen);
    if (!text) {
        w->out[w->len++] = 0;
        return;
    }
    uint8_t *o = w->out + w->len;
    Py_ssize_t done = 0; /* text bytes written */
    uint8_t *lenbyte = NULL;
#define EMIT(c)                                                  \
    do {                                                         \
        if (done == text) goto finished;                         \
        if (done % 255 == 0) {                                   \
            lenbyte = o++;                                       \
            *lenbyte = (uint8_t)(text - done < 255 ? text - done : 255); \
        }                                                        \
        *o++ = (c);                                              \
        done++;                                                  \
    } while (0)
    for (Py_ssize_t i = 0; i < n; i++) {
        if (t[i] != '$') EMIT(t[i]);
        else if (i + 1 < n && t[i + 1] == '$') {
            EMIT('$');
            i++;
        } else
            for (int k = 0; k < slen; k++) EMIT(subject[k]);
    }
#undef EMIT
finished:
    (void)lenbyte;
    w->len = (int)(o - w->out);
}

/* Parse the IPv4 (or IPv4-mapped nibble) name in labels [0, nprefix).  Returns 4 with *addr
 * for a full address, 1 for an empty non-terminal ("partial"), 0 for a name that is no
 * address (NXDOMAIN in the IP zone), -1 for a full IPv6 address (Python answers it). */
static int parse_ip(const uint8_t *p, const int *starts, int nprefix, uint32_t *addr) {
    int digits = nprefix <= 4;
    uint32_t v = 0;
    for (int i = 0; i < nprefix && digits; i++) {
        const uint8_t *l = p + starts[i];
        int n = l[0];
        if (n < 1 || n > 3) {
            digits = 0;
            break;
        }
        uint32_t x = 0;
        for (int k = 1; k <= n; k++) {
            if (l[k] < '0' || l[k] > '9') {
                digits = 0;
                break;
            }
            x = x * 10 + (uint32_t)(l[k] - '0');
        }
        if (!digits || x > 255) {
            digits = 0;
            break;
        }
        v |= x << (8 * i); /* labels are reversed: the first is the last octet */
    }
    if (digits) {
        if (nprefix < 4) return 1;
        *addr = v;
        return 4;
    }
    if (nprefix > 32) return 0;
    uint8_t nib[32];
    for (int i = 0; i < nprefix; i++) {
        const uint8_t *l = p + starts[i];
        if (l[0] != 1) return 0;
        uint8_t c = lower(l[1]);
        if (c >= '0' && c <= '9') nib[i] = (uint8_t)(c - '0');
        else if (c >= 'a' && c <= 'f') nib[i] = (uint8_t)(c - 'a' + 10);
        else return 0;
    }
    if (nprefix < 32) return 1;
    /* nib[0] is the lowest nibble.  ::ffff:a.b.c.d = nibbles 8..11 are f, 12..31 are 0. */
    for (int i = 8; i < 12; i++)
        if (nib[i] != 0xF) return -1;
    for (int i = 12; i < 32; i++)
        if (nib[i] != 0) return -1;
    v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 4) | nib[i];
    *addr = v;
    return 4;
}

/* Answer *p* into *out* (capacity MAX_REPLY+) as Responder.respond(p, max_size) would.
 * Returns the reply length and sets *slot, or -1 when Python must answer the packet. */
/* True when addr is one of the overlay's addresses (sorted array, bisect). */
static int deferred(const Engine *e, uint32_t addr) {
    Py_ssize_t lo = 0, hi = e->n_defer;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (e->defer[mid] < addr) lo = mid + 1;
        else hi = mid;
    }
    return lo < e->n_defer && e->defer[lo] == addr;
}

static int answer(const Engine *e, const uint8_t *p, int len, int max_size, uint8_t *out,
                  int *slot) {
    if (len < 12 || max_size < 0) return -1;
    uint16_t flags = rd16(p + 2);
    if (flags & (F_QR | 0x7800)) return -1; /* responses and opcodes other than QUERY */
    if (rd16(p + 4) != 1 || rd16(p + 6) || rd16(p + 8)) return -1;
    int arcount = rd16(p + 10);
    int starts[128], nlabels = 0;
    int qend = skip_name(p, len, 12, starts, &nlabels);
    if (qend < 0 || qend + 4 > len) return -1;
    int qtype = rd16(p + qend), qclass = rd16(p + qend + 2);
    /* EDNS (wire.py _parse_opt) */
    int edns = 0, edns_size = 0, pos = qend + 4;
    for (int r = 0; r < arcount; r++) {
        if (pos >= len) return -1;
        if (p[pos] == 0) pos++;
        else if ((pos = skip_name(p, len, pos, NULL, NULL)) < 0) return -1;
        if (pos + 10 > len) return -1;
        int rtype = rd16(p + pos), rclass = rd16(p + pos + 2);
        int version = p[pos + 5];
        pos += 10 + rd16(p + pos + 8);
        if (pos > len) return -1;
        if (rtype == T_OPT) {
            if (edns) return -1;
            if (version != 0) return -1; /* BADVERS: Python */
            edns = 1;
            edns_size = rclass;
        }
    }
    /* zone: the IPv4 block zone, and no other zone that could be the longest match */
    if (!under(p, starts, nlabels, 12, qend, e->zone, e->zone_len)) return -1;
    for (int i = 0; i < e->n_others; i++)
        if (e->other_len[i] >= e->zone_len &&
            under(p, starts, nlabels, 12, qend, e->others[i], e->other_len[i]))
            return -1;
    if (qclass != C_IN || qtype == T_AXFR || qtype == T_IXFR) return -1;
    int apex = qend - e->zone_len; /* offset of the zone name in the question */
    int nprefix = 0;
    while (nprefix < nlabels && starts[nprefix] < apex) nprefix++;
    if (nprefix == 0) return -1; /* the apex: SOA/NS, Python */
    uint32_t addr = 0;
    int kind = parse_ip(p, starts, nprefix, &addr);
    if (kind < 0) return -1;
    if (kind == 4 && e->n_defer && deferred(e, addr)) return -1; /* changed: the overlay's */
    uint32_t value = V_NONE;
    if (kind == 4) value = v4_value(e, addr);
    int found = kind == 1 || (kind == 4 && value != V_NONE && value != V_EXCLUDED &&
                              e->val_index[value + 1] > e->val_index[value]);
    int rcode = found ? 0 : RC_NXDOMAIN;
    *slot = (kind == 4 && found) ? SLOT_HIT : SLOT_MISS;

    /* wire.py _finish: max_size only says "UDP"; the client offers 512 or EDNS's size, we
     * send at most max_udp, and to a client offering <= 512 at most amplification x query */
    int offered = edns && edns_size > 512 ? edns_size : 512;
    int limit = offered < e->max_udp ? offered : e->max_udp;
    if (e->amplification && offered <= 512 && e->amplification * len < limit)
        limit = e->amplification * len;
    if (limit > MAX_REPLY) limit = MAX_REPLY;
    int qlen = qend + 4 - 12;
    Writer w = {out, 12, limit, 0};
    put(&w, p + 12, qlen);
    int ancount = 0;
    if (kind == 4 && found) {
        const uint32_t *atoms = e->val_atoms + e->val_index[value];
        int n = (int)(e->val_index[value + 1] - e->val_index[value]);
        if (qtype == T_A || qtype == T_ANY) {
            uint32_t codes[MAX_ATOMS];
            int nc = 0;
            for (int i = 0; i < n; i++) { /* sorted set of codes */
                uint32_t c = e->atom_code[atoms[i]];
                int j = nc;
                while (j > 0 && codes[j - 1] > c) j--;
                if (j > 0 && codes[j - 1] == c) continue;
                memmove(codes + j + 1, codes + j, (size_t)(nc - j) * sizeof(uint32_t));
                codes[j] = c;
                nc++;
            }
            for (int i = 0; i < nc; i++) {
                uint8_t rr[16];
                wr16(rr, 0xC00C);
                wr16(rr + 2, T_A);
                wr16(rr + 4, C_IN);
                wr32(rr + 6, e->ttl);
                wr16(rr + 10, 4);
                wr32(rr + 12, codes[i]);
                put(&w, rr, 16);
            }
            ancount += nc;
        }
        if (qtype == T_TXT) { /* ANY: the A RRset alone (RFC 8482 4.2) */
            char subject[16];
            int slen = snprintf(subject, sizeof subject, "%u.%u.%u.%u", addr >> 24,
                                (addr >> 16) & 255, (addr >> 8) & 255, addr & 255);
            for (int i = 0; i < n; i++) put_txt(&w, e, atoms[i], (const uint8_t *)subject, slen);
            ancount += n;
        }
    }
    int nscount = 0;
    if (ancount == 0) {
        put_rr_head(&w, (uint16_t)(0xC000 | apex), T_SOA, e->negative_ttl, e->soa_len);
        put(&w, e->soa, e->soa_len);
        nscount = 1;
    }
    static const uint8_t opt[11] = {0, 0, T_OPT, OUR_UDP_SIZE >> 8, OUR_UDP_SIZE & 255,
                                    0, 0, 0, 0, 0, 0};
    uint16_t rflags = (uint16_t)(F_QR | F_AA | (flags & F_RD) | rcode);
    if (edns) put(&w, opt, 11);
    if (w.over) { /* TC: header, question and OPT only */
        rflags |= F_TC;
        ancount = nscount = 0;
        w.len = 12 + qlen;
        if (edns) {
            memcpy(out + w.len, opt, 11);
            w.len += 11;
        }
    }
    out[0] = p[0];
    out[1] = p[1];
    wr16(out + 2, rflags);
    wr16(out + 4, 1);
    wr16(out + 6, (uint32_t)ancount);
    wr16(out + 8, (uint32_t)nscount);
    wr16(out + 10, edns ? 1 : 0);
    return w.len;
}

static PyObject *Engine_respond(Engine *self, PyObject *args) {
    Py_buffer packet;
    int max_size;
    if (!PyArg_ParseTuple(args, "y*i", &packet, &max_size)) return NULL;
    uint8_t out[MAX_REPLY + 64];
    int slot = 0;
    int n = packet.len > 65535 ? -1
                               : answer(self, packet.buf, (int)packet.len, max_size, out, &slot);
    PyBuffer_Release(&packet);
    if (n < 0) Py_RETURN_NONE;
    return Py_BuildValue("(y#i)", (const char *)out, (Py_ssize_t)n, slot);
}

static PyMethodDef Engine_methods[] = {
    {"respond", (PyCFunction)Engine_respond, METH_VARARGS,
     "respond(packet, max_size) -> (reply, counter slot), or None when Python must answer"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "reputable.publication.dnsbl._fastdns.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One snapshot's IPv4 zone tables, answering packets in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
};


/* ---------------------------------------------------------------------------------------- */
/* Limiter: response rate limiting, as rrl.py's RateLimiter decides (see its docstring)       */

#define RRL_SIZE 65536 /* direct-mapped buckets; a colliding bucket is restarted */
#define RRL_RULES 64
enum { RRL_SEND = 0, RRL_DROP = 1, RRL_SLIP = 2 };

typedef struct {
    uint64_t hash;
    int64_t second;
    uint32_t count;
    uint32_t used;
} RrlEntry;

typedef struct {
    int family, bits;
    uint8_t net[16];
    uint32_t rate;
} RrlRule;

typedef struct {
    PyObject_HEAD
    RrlEntry *table;
    uint32_t rate, slip;
    int nrules;
    RrlRule rules[RRL_RULES];
    long dropped, slipped; /* statistics only: updated by UDP threads without the GIL */
} Limiter;

static void Limiter_dealloc(Limiter *self) {
    PyMem_RawFree(self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Limiter_init(Limiter *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"rate", "slip", "rules", NULL};
    unsigned int rate, slip;
    PyObject *rules;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "IIO", names, &rate, &slip, &rules)) return -1;
    if (self->table) {
        PyErr_SetString(PyExc_RuntimeError, "Limiter is already initialised");
        return -1;
    }
    PyObject *seq = PySequence_Fast(rules, "rules must be a sequence of (net, bits, rate)");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > RRL_RULES) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d rate rules", RRL_RULES);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *net;
        Py_ssize_t netlen;
        int bits;
        unsigned int r;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "y#iI", &net, &netlen, &bits,
                              &r) ||
            (netlen != 4 && netlen != 16) || bits < 0 || bits > netlen * 8) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "rule: (4 or 16 network bytes, bits, rate)");
            return -1;
        }
        self->rules[i].family = netlen == 4 ? 4 : 6;
        self->rules[i].bits = bits;
        memset(self->rules[i].net, 0, 16);
        memcpy(self->rules[i].net, net, (size_t)netlen);
        self->rules[i].rate = r;
    }
    Py_DECREF(seq);
    self->nrules = (int)n;
    self->rate = rate;
    self->slip = slip;
    self->table = PyMem_RawCalloc(RRL_SIZE, sizeof(RrlEntry));
    if (self->table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static inline uint64_t fnv(uint64_t h, const uint8_t *p, int n, int fold) {
    for (int i = 0; i < n; i++) {
        h ^= fold ? lower(p[i]) : p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int prefix_match(const uint8_t *a, const uint8_t *net, int bits) {
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)whole)) return 0;
    if (!rest) return 1;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

/* SEND, DROP or SLIP for *reply* (len bytes) to the client *addr* (4 or 16 bytes). */
static int rrl_decide(Limiter *l, int family, const uint8_t *addr, const uint8_t *r, int len,
                      int64_t now) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (family == 6 && !memcmp(addr, mapped, 12)) {
        family = 4;
        addr += 12;
    }
    uint32_t rate = l->rate;
    for (int i = 0; i < l->nrules; i++)
        if (l->rules[i].family == family && prefix_match(addr, l->rules[i].net, l->rules[i].bits)) {
            rate = l->rules[i].rate;
            break;
        }
    if (!rate) return RRL_SEND;
    uint8_t fam = (uint8_t)family;
    uint64_t h = fnv(0xcbf29ce484222325ULL, &fam, 1, 0);
    h = fnv(h, addr, family == 4 ? 3 : 7, 0);
    static const uint8_t positive = 1, negative = 2, error = 3;
    int rcode = len >= 12 ? (r[3] & 0xF) : -1;
    int pos = 12;
    if (len < 12 || rd16(r + 4) != 1 || (rcode != 0 && rcode != 3)) goto err;
    while (pos < len && r[pos]) pos += r[pos] + 1;
    int qend = pos + 5;
    if (qend > len) goto err;
    if ((r[2] << 8 & F_TC) || rd16(r + 6)) {
        h = fnv(h, &positive, 1, 0);
        h = fnv(h, r + 12, pos + 1 - 12, 1);
        h = fnv(h, r + pos + 1, 4, 0);
    } else {
        h = fnv(h, &negative, 1, 0);
        if (rd16(r + 8) && qend + 1 < len && (r[qend] & 0xC0) == 0xC0) {
            int off = ((r[qend] & 0x3F) << 8) | r[qend + 1];
            if (off >= 12 && off <= pos) h = fnv(h, r + off, pos + 1 - off, 1);
        }
    }
    goto decide;
err:
    h = fnv(h, &error, 1, 0);
decide:;
    RrlEntry *e = &l->table[h & (RRL_SIZE - 1)];
    if (!e->used || e->hash != h || e->second != now) {
        e->used = 1;
        e->hash = h;
        e->second = now;
        e->count = 0;
    }
    if (e->count < UINT32_MAX) e->count++;
    if (e->count <= rate) return RRL_SEND;
    uint32_t excess = e->count - rate;
    if (l->slip && excess % l->slip == 0) {
        l->slipped++;
        return RRL_SLIP;
    }
    l->dropped++;
    return RRL_DROP;
}

/* Rewrite the reply *r* of *len* bytes in place as rrl.py's slipped(); return its length. */
static int rrl_slip(uint8_t *r, int len) {
    int qd = rd16(r + 4), ar = rd16(r + 10);
    int end = 12;
    if (qd == 1) {
        while (end < len && r[end]) end += r[end] + 1;
        end += 5;
    }
    if (end > len) end = len;
    uint8_t opt[11];
    int optlen = ar && len >= 11 ? 11 : 0;
    if (optlen) memcpy(opt, r + len - 11, 11);
    r[2] |= F_TC >> 8;
    wr16(r + 6, 0);
    wr16(r + 8, 0);
    wr16(r + 10, ar ? 1 : 0);
    if (optlen) memcpy(r + end, opt, 11);
    return end + optlen;
}

static int64_t monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static PyObject *Limiter_check(Limiter *self, PyObject *args) {
    const char *host;
    Py_buffer reply;
    long long now;
    if (!PyArg_ParseTuple(args, "sy*L", &host, &reply, &now)) return NULL;
    char text[INET6_ADDRSTRLEN + 1];
    size_t n = strcspn(host, "%");
    uint8_t addr[16];
    int family = 0;
    if (n < sizeof text) {
        memcpy(text, host, n);
        text[n] = 0;
        if (inet_pton(AF_INET, text, addr) == 1) family = 4;
        else if (inet_pton(AF_INET6, text, addr) == 1) family = 6;
    }
    int verdict = RRL_SEND;
    if (family && reply.len <= 65535)
        verdict = rrl_decide(self, family, addr, reply.buf, (int)reply.len, (int64_t)now);
    PyBuffer_Release(&reply);
    return PyLong_FromLong(verdict);
}

static PyObject *Limiter_counts(Limiter *self, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(ll)", self->dropped, self->slipped);
}

static PyMethodDef Limiter_methods[] = {
    {"check", (PyCFunction)Limiter_check, METH_VARARGS,
     "check(host, reply, now) -> 0 send, 1 drop, 2 slip (rrl.RateLimiter.check)"},
    {"counts", (PyCFunction)Limiter_counts, METH_NOARGS, "counts() -> (dropped, slipped)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LimiterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "reputable.publication.dnsbl._fastdns.Limiter",
    .tp_basicsize = sizeof(Limiter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Response rate limiting buckets shared by the UDP loops of one worker.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Limiter_init,
    .tp_dealloc = (destructor)Limiter_dealloc,
    .tp_methods = Limiter_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* Loop: one socket's batched receive and send                                                */

typedef struct {
    PyObject_HEAD
    int fd;
    int batch;
    struct mmsghdr *in, *out;
    struct iovec *in_iov, *out_iov;
    struct sockaddr_storage *addr;
    uint8_t *in_buf;  /* batch * RECV_SIZE */
    uint8_t *out_buf; /* batch * (MAX_REPLY + 64) */
    PyThread_type_lock lock; /* one run() at a time per Loop */
} Loop;

static void Loop_dealloc(Loop *self) {
    PyMem_RawFree(self->in);
    PyMem_RawFree(self->out);
    PyMem_RawFree(self->in_iov);
    PyMem_RawFree(self->out_iov);
    PyMem_RawFree(self->addr);
    PyMem_RawFree(self->in_buf);
    PyMem_RawFree(self->out_buf);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Loop_init(Loop *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"fd", "batch", NULL};
    int fd, batch = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|i", names, &fd, &batch)) return -1;
    if (self->in) {
        PyErr_SetString(PyExc_RuntimeError, "Loop is already initialised");
        return -1;
    }
    if (batch < 1 || batch > MAX_BATCH) {
        PyErr_Format(PyExc_ValueError, "batch must be 1-%d", MAX_BATCH);
        return -1;
    }
    self->fd = fd;
    self->batch = batch;
    size_t b = (size_t)batch;
    self->in = PyMem_RawCalloc(b, sizeof(struct mmsghdr));
    self->out = PyMem_RawCalloc(b, sizeof(struct mmsghdr));
    self->in_iov = PyMem_RawCalloc(b, sizeof(struct iovec));
    self->out_iov = PyMem_RawCalloc(b, sizeof(struct iovec));
    self->addr = PyMem_RawCalloc(b, sizeof(struct sockaddr_storage));
    self->in_buf = PyMem_RawMalloc(b * RECV_SIZE);
    self->out_buf = PyMem_RawMalloc(b * (MAX_REPLY + 64));
    self->lock = PyThread_allocate_lock();
    if (!self->in || !self->out || !self->in_iov || !self->out_iov || !self->addr ||
        !self->in_buf || !self->out_buf || !self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *make_address(const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port), ntohl(a->sin6_flowinfo),
                             a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

static int add_counter(PyObject *counters, Py_ssize_t index, long delta) {
    if (!delta) return 0;
    PyObject *old = PyList_GetItem(counters, index);
    if (old == NULL) return -1;
    PyObject *add = PyLong_FromLong(delta);
    if (add == NULL) return -1;
    PyObject *sum = PyNumber_Add(old, add);
    Py_DECREF(add);
    if (sum == NULL) return -1;
    return PyList_SetItem(counters, index, sum); /* steals sum */
}

static PyObject *Loop_run(Loop *self, PyObject *args) {
    Engine *engine;
    PyObject *counters;
    int timeout_ms, handle;
    PyObject *engine_obj, *limiter_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OO!ip|O", &engine_obj, &PyList_Type, &counters, &timeout_ms,
                          &handle, &limiter_obj))
        return NULL;
    Limiter *limiter = NULL;
    if (limiter_obj != Py_None) {
        if (!PyObject_TypeCheck(limiter_obj, &LimiterType)) {
            PyErr_SetString(PyExc_TypeError, "limiter must be a Limiter or None");
            return NULL;
        }
        limiter = (Limiter *)limiter_obj;
    }
    if (engine_obj == Py_None) {
        engine = NULL;
        handle = 0;
    } else if (PyObject_TypeCheck(engine_obj, &EngineType)) {
        engine = (Engine *)engine_obj;
    } else {
        PyErr_SetString(PyExc_TypeError, "engine must be an Engine or None");
        return NULL;
    }
    if (PyList_GET_SIZE(counters) < 2) {
        PyErr_SetString(PyExc_ValueError, "counters too short");
        return NULL;
    }
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        PyErr_SetString(PyExc_RuntimeError, "Loop.run is already running in another thread");
        return NULL;
    }
    int got = 0, err = 0, sent = 0, nout = 0;
    long hits = 0, misses = 0;
    uint8_t fallback[MAX_BATCH];
    Py_BEGIN_ALLOW_THREADS
    struct pollfd pfd = {self->fd, POLLIN, 0};
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready < 0) err = errno;
    else if (ready > 0) {
        for (int i = 0; i < self->batch; i++) {
            self->in_iov[i].iov_base = self->in_buf + (size_t)i * RECV_SIZE;
            self->in_iov[i].iov_len = RECV_SIZE;
            struct msghdr *h = &self->in[i].msg_hdr;
            memset(h, 0, sizeof *h);
            h->msg_name = &self->addr[i];
            h->msg_namelen = sizeof(struct sockaddr_storage);
            h->msg_iov = &self->in_iov[i];
            h->msg_iovlen = 1;
        }
        got = recvmmsg(self->fd, self->in, (unsigned)self->batch, MSG_DONTWAIT, NULL);
        if (got < 0) {
            err = errno;
            got = 0;
        }
    }
    int64_t now = limiter ? monotonic_seconds() : 0;
    for (int i = 0; i < got; i++) {
        const uint8_t *pkt = self->in_iov[i].iov_base;
        int len = (int)self->in[i].msg_len;
        uint8_t *o = self->out_buf + (size_t)nout * (MAX_REPLY + 64);
        int slot = 0;
        int n = handle ? answer(engine, pkt, len, 512, o, &slot) : -1;
        fallback[i] = n < 0;
        if (n < 0) continue;
        if (slot == SLOT_HIT) hits++;
        else misses++;
        if (limiter) {
            const struct sockaddr_storage *ss = &self->addr[i];
            int verdict = RRL_SEND;
            if (ss->ss_family == AF_INET)
                verdict = rrl_decide(limiter, 4,
                                     (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr,
                                     o, n, now);
            else if (ss->ss_family == AF_INET6)
                verdict = rrl_decide(
                    limiter, 6, ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr, o, n, now);
            if (verdict == RRL_DROP) continue;
            if (verdict == RRL_SLIP) n = rrl_slip(o, n);
        }
        self->out_iov[nout].iov_base = o;
        self->out_iov[nout].iov_len = (size_t)n;
        struct msghdr *h = &self->out[nout].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &self->addr[i];
        h->msg_namelen = self->in[i].msg_hdr.msg_namelen;
        h->msg_iov = &self->out_iov[nout];
        h->msg_iovlen = 1;
        nout++;
    }
    /* Send every reply; a full send buffer waits briefly, then the rest is dropped (as UDP
     * may), an unreachable client skips one message. */
    int tries = 0;
    while (sent < nout && tries < 100) {
        int r = sendmmsg(self->fd, self->out + sent, (unsigned)(nout - sent), MSG_DONTWAIT);
        if (r > 0) {
            sent += r;
            continue;
        }
        tries++;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd w = {self->fd, POLLOUT, 0};
            poll(&w, 1, 10);
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            sent++; /* this message failed (e.g. ECONNREFUSED): skip it */
        }
    }
    Py_END_ALLOW_THREADS
    PyThread_release_lock(self->lock);
    if (add_counter(counters, SLOT_HIT, hits) < 0 || add_counter(counters, SLOT_MISS, misses) < 0)
        return NULL;
    if (err && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *rest = PyList_New(0);
    if (rest == NULL) return NULL;
    for (int i = 0; i < got; i++) {
        if (!fallback[i]) continue;
        PyObject *address = make_address(&self->addr[i]);
        if (address == NULL) {
            Py_DECREF(rest);
            return NULL;
        }
        PyObject *item = Py_BuildValue("(y#N)", (const char *)self->in_iov[i].iov_base,
                                       (Py_ssize_t)self->in[i].msg_len, address);
        if (item == NULL || PyList_Append(rest, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(rest);
            return NULL;
        }
        Py_DECREF(item);
    }
    return rest;
}

static PyMethodDef Loop_methods[] = {
    {"run", (PyCFunction)Loop_run, METH_VARARGS,
     "run(engine | None, counters, timeout_ms, handle, limiter=None) -> [(packet, address)] for "
     "Python to answer"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "reputable.publication.dnsbl._fastdns.Loop",
    .tp_basicsize = sizeof(Loop),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Batched UDP receive/answer/send on one socket.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Loop_init,
    .tp_dealloc = (destructor)Loop_dealloc,
    .tp_methods = Loop_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastdns", "Compiled UDP packet loop of the DNSBL worker.", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastdns(void) {
    if (PyType_Ready(&EngineType) < 0 || PyType_Ready(&LoopType) < 0 ||
        PyType_Ready(&LimiterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&EngineType);
    Py_INCREF(&LoopType);
    Py_INCREF(&LimiterType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0 ||
        PyModule_AddObject(m, "Loop", (PyObject *)&LoopType) < 0 ||
        PyModule_AddObject(m, "Limiter", (PyObject *)&LimiterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "MAX_BATCH", MAX_BATCH);
    return m;
}
