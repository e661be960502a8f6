/* Load generator for bench/policy_service.py: Postfix-like clients of the policy service.
 *
 * Compiled by the bench with the machine's gcc (like wrk is a real load generator for HTTP):
 * a Python client costs about as much CPU per request as the server, and on 2 cores that
 * CPU is taken from the server. Each connection has one request outstanding at a time, as
 * Postfix's smtpd does. Paced (rate > 0): connection i's next request is due one interval
 * after its last one was due, a timerfd wakes the loop at the earliest due time, and the
 * latency counts from the due time (a stall in the server counts fully: no coordinated
 * omission). Unpaced: the next request goes as soon as the answer is complete.
 *
 * usage: policy_load PORT SECONDS CONNECTIONS RATE REQUESTS_FILE
 *   REQUESTS_FILE holds requests, each ending with an empty line ("\n\n").
 * prints one latency per line (nanoseconds, from due/send time to the answer's last byte).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int64_t due;     /* ns: when the next request is due (paced) */
    int64_t sent_at; /* ns: latency origin of the outstanding request */
    int busy;        /* a request is outstanding */
    size_t next;     /* index of the next request */
    size_t got;      /* bytes of the answer so far */
    char tail[2];    /* the answer's last two bytes */
} conn_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT SECONDS CONNECTIONS RATE REQUESTS_FILE\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double seconds = atof(argv[2]);
    int nconn = atoi(argv[3]);
    double rate = atof(argv[4]);
    FILE *f = fopen(argv[5], "rb");
    if (!f) die("requests file");
    struct stat st;
    if (fstat(fileno(f), &st) < 0) die("stat");
    char *data = malloc((size_t)st.st_size + 1);
    if (!data || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) die("read");
    fclose(f);
    size_t cap = 1024, nreq = 0;
    char **req = malloc(cap * sizeof *req);
    size_t *len = malloc(cap * sizeof *len);
    for (char *p = data, *end = data + st.st_size; p < end;) {
        char *stop = memmem(p, (size_t)(end - p), "\n\n", 2);
        if (!stop) break;
        if (nreq == cap) {
            cap *= 2;
            req = realloc(req, cap * sizeof *req);
            len = realloc(len, cap * sizeof *len);
        }
        req[nreq] = p;
        len[nreq++] = (size_t)(stop + 2 - p);
        p = stop + 2;
    }
    if (nreq == 0 || nconn < 1) {
        fprintf(stderr, "no requests or connections\n");
        return 2;
    }
    int ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (ep < 0 || tfd < 0) die("epoll/timerfd");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)-1};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    conn_t *c = calloc((size_t)nconn, sizeof *c);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int64_t interval = rate > 0 ? (int64_t)(1e9 * nconn / rate) : 0;
    int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9);
    for (int i = 0; i < nconn; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i].fd < 0 || connect(c[i].fd, (struct sockaddr *)&addr, sizeof addr) < 0)
            die("connect");
        int one = 1;
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        c[i].next = (size_t)i;
        c[i].due = start + (interval ? interval * i / nconn : 0);
    }
    size_t lcap = 1 << 20, nlat = 0;
    int64_t *lat = malloc(lcap * sizeof *lat);
    char buf[65536];
    struct epoll_event events[256];
    for (;;) {
        int64_t now = now_ns();
        if (now >= end) break;
        int64_t soonest = end;
        for (int i = 0; i < nconn; i++) {
            if (c[i].busy) continue;
            if (interval && c[i].due > now) {
                if (c[i].due < soonest) soonest = c[i].due;
                continue;
            }
            size_t k = c[i].next % nreq;
            c[i].sent_at = interval ? c[i].due : now;
            ssize_t w = send(c[i].fd, req[k], len[k], MSG_NOSIGNAL);
            if (w != (ssize_t)len[k]) die("send"); /* a few hundred bytes: never partial here */
            c[i].next += (size_t)nconn;
            c[i].busy = 1;
            c[i].got = 0;
        }
        struct itimerspec its = {0};
        its.it_value.tv_sec = soonest / 1000000000LL;
        its.it_value.tv_nsec = soonest % 1000000000LL;
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int e = 0; e < n; e++) {
            uint64_t id = events[e].data.u64;
            if (id == (uint64_t)-1) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) die("timerfd");
                continue;
            }
            conn_t *k = &c[id];
            ssize_t r = recv(k->fd, buf, sizeof buf, 0);
            if (r <= 0) {
                fprintf(stderr, "connection %llu closed by the server\n", (unsigned long long)id);
                return 1;
            }
            if (k->got == 0 && (r < 7 || memcmp(buf, "action=", 7) != 0)) {
                fprintf(stderr, "bad answer: %.*s\n", (int)(r < 80 ? r : 80), buf);
                return 1;
            }
            if (r >= 2) {
                k->tail[0] = buf[r - 2];
                k->tail[1] = buf[r - 1];
            } else {
                k->tail[0] = k->tail[1];
                k->tail[1] = buf[0];
            }
            k->got += (size_t)r;
            if (k->got >= 2 && k->tail[0] == '\n' && k->tail[1] == '\n') {
                int64_t done = now_ns();
                if (nlat == lcap) {
                    lcap *= 2;
                    lat = realloc(lat, lcap * sizeof *lat);
                }
                lat[nlat++] = done - k->sent_at;
                k->busy = 0;
                if (interval) k->due += interval;
            }
        }
    }
    for (int i = 0; i < nconn; i++) close(c[i].fd);
    char out[32];
    for (size_t i = 0; i < nlat; i++) {
        int m = snprintf(out, sizeof out, "%lld\n", (long long)lat[i]);
        fwrite(out, 1, (size_t)m, stdout);
    }
    return 0;
}
