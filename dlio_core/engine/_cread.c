/* _cread: whole-file reads of local files with the GIL released, for the native engine.
 *
 * Reading many small files from Python costs a GIL hand-off per system call (os.open, os.preadv,
 * os.close each release and retake it), and with more than one Python thread reading, every
 * hand-off can cost a thread wake-up, which on a VM with idle vCPUs is ~50 us, more than a 4 KiB
 * file's whole read. This module reads a batch of files in one call with the GIL released once:
 *
 *   read_files(paths, bufs) -> (got, seconds)
 *       Open each path, read the file from offset 0 into its buffer (until the buffer is full or the
 *       file ends; EINTR and short reads are retried), close it. ``got`` lists the bytes read per
 *       file; ``seconds`` is the time the reads took. The first failure raises OSError naming the
 *       file (errno, strerror, filename), like os.open would.
 *
 *   ReadPool(threads, spin_us=0)
 *       ``threads`` native threads (no Python, never the GIL) that run submitted batches:
 *       submit(paths, bufs) -> ticket      queue a batch (buffers are held until it is collected)
 *       wait(ticket) -> (got, seconds)     that batch's result; a batch no thread has started yet
 *                                          is run by the caller itself, at once (it would only wait);
 *                                          while a thread reads it, the caller reads later batches
 *                                          no thread has started (in order), then waits
 *       close()                            stop and join the threads; batches never collected are
 *                                          dropped (a running one is finished first)
 *       Batches start in submission order. An idle thread spins up to ``spin_us`` microseconds
 *       (yielding the CPU) before it sleeps, and so does wait() before it sleeps on a running batch:
 *       a sleeping thread costs a wake-up to restart. A pool opens each file relative to its
 *       directory (openat), kept open (O_PATH) for the pool's life: up to 16 directories, files
 *       elsewhere are opened by path.
 *
 *   spans_match(bufs, spans) -> bool
 *       Whether every buffer bufs[i] holds, for each pair of the tuple spans[i] = (offset, bytes,
 *       offset, bytes, ...), those bytes at that offset: the header checks of a whole batch of cached
 *       parses (see engine/buffers.py, _Scratch.parse_batch) in one call instead of one per file.
 *
 * The buffers are any writable buffer objects (memoryview slices of a numpy array, bytearray);
 * a batch keeps its buffers (and so their memory) alive until it is collected or the pool closes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_PATH  /* not Linux: a plain read-only directory descriptor serves openat too */
#define O_PATH 0
#endif

enum { PENDING = 0, RUNNING = 1, DONE = 2 };

/* Bumped in a forked child (pthread_atfork): a pool made before the fork has none of its threads
   there. (Cheaper than asking for the process id, a system call, on every submit and wait.) */
static int fork_generation = 0;

static void after_fork_in_child(void) { fork_generation++; }

/* A pool's open directories: a file is opened relative to its directory's descriptor (openat), which
   walks one path component instead of every one of an absolute path (0.47 of the 3.3 us an open and
   close of a 4 KiB file cost on the VM of RESULTS.md). Entries are added under their own lock and
   published by count (readers take none); they never change after, and close with the pool's memory. */
#define DIR_SLOTS 16
typedef struct {
    char *path;  /* the directory, without its last slash */
    size_t len;
    int fd;      /* O_PATH descriptor, or -1: could not be opened (files there are opened by path) */
} DirSlot;

typedef struct {
    pthread_mutex_t mu;
    DirSlot slots[DIR_SLOTS];
    int count;  /* published slots (atomics) */
} DirCache;

static int dir_fd_of(DirCache *c, const char *path, const char **name) {
    const char *slash = strrchr(path, '/');
    if (c == NULL || slash == NULL || slash == path)
        return -1;
    size_t len = (size_t)(slash - path);
    int n = __atomic_load_n(&c->count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        DirSlot *d = &c->slots[i];
        if (d->len == len && memcmp(d->path, path, len) == 0) {
            *name = slash + 1;
            return d->fd;
        }
    }
    if (n >= DIR_SLOTS)
        return -1;
    pthread_mutex_lock(&c->mu);
    int fd = -1;
    n = c->count;
    for (int i = 0; i < n; i++)  /* another thread may have added it meanwhile */
        if (c->slots[i].len == len && memcmp(c->slots[i].path, path, len) == 0) {
            fd = c->slots[i].fd;
            goto out;
        }
    if (n < DIR_SLOTS) {
        char *copy = malloc(len + 1);
        if (copy != NULL) {
            memcpy(copy, path, len);
            copy[len] = 0;
            do {
                fd = open(copy, O_PATH | O_DIRECTORY | O_CLOEXEC);
            } while (fd < 0 && errno == EINTR);
            c->slots[n] = (DirSlot){copy, len, fd < 0 ? -1 : fd};
            fd = c->slots[n].fd;
            __atomic_store_n(&c->count, n + 1, __ATOMIC_RELEASE);
        }
    }
out:
    pthread_mutex_unlock(&c->mu);
    if (fd >= 0)
        *name = slash + 1;
    return fd;
}

static void dir_cache_free(DirCache *c) { /* no thread reads it any more */
    for (int i = 0; i < c->count; i++) {
        if (c->slots[i].fd >= 0)
            close(c->slots[i].fd);
        free(c->slots[i].path);
    }
    c->count = 0;
}

typedef struct Job {
    long long ticket;
    DirCache *dirs;    /* the pool's, or NULL: open by path */
    Py_ssize_t n;
    PyObject **paths;  /* bytes (file-system encoded), owned */
    Py_buffer *views;  /* acquired writable buffers, n of them once complete */
    Py_ssize_t nviews;
    Py_ssize_t *got;
    int state;         /* PENDING / RUNNING / DONE: read and written with atomics */
    int claimed;       /* a wait() is collecting it */
    int helper;        /* a wait() for another batch is running it (see pool_wait): kept by close() */
    int err;           /* errno of the first failure, 0 if none */
    Py_ssize_t failed; /* index of the file that failed */
    double seconds;
    struct Job *next;
} Job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs without the GIL. */
static void run_job(Job *j) {
    double t0 = now_s();
    for (Py_ssize_t i = 0; i < j->n; i++) {
        int fd;
        const char *path = PyBytes_AS_STRING(j->paths[i]), *name = path;
        int dir = dir_fd_of(j->dirs, path, &name);
        do {
            fd = dir >= 0 ? openat(dir, name, O_RDONLY | O_CLOEXEC) : open(path, O_RDONLY | O_CLOEXEC);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            j->err = errno;
            j->failed = i;
            break;
        }
        char *p = (char *)j->views[i].buf;
        Py_ssize_t want = j->views[i].len, have = 0;
        while (have < want) {
            ssize_t r = pread(fd, p + have, (size_t)(want - have), (off_t)have);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                j->err = errno;
                j->failed = i;
                break;
            }
            if (r == 0)
                break;
            have += r;
        }
        close(fd);
        if (j->err)
            break;
        j->got[i] = have;
    }
    j->seconds = now_s() - t0;
}

static void free_job(Job *j) { /* with the GIL */
    if (j == NULL)
        return;
    for (Py_ssize_t i = 0; i < j->nviews; i++)
        PyBuffer_Release(&j->views[i]);
    if (j->paths != NULL)
        for (Py_ssize_t i = 0; i < j->n; i++)
            Py_XDECREF(j->paths[i]);
    PyMem_Free(j->paths);
    PyMem_Free(j->views);
    PyMem_Free(j->got);
    PyMem_Free(j);
}

/* A job for paths[i] -> bufs[i], with the GIL; NULL with an exception set on bad arguments. */
static Job *make_job(PyObject *paths, PyObject *bufs) {
    PyObject *pseq = PySequence_Fast(paths, "paths must be a sequence of file paths");
    if (pseq == NULL)
        return NULL;
    PyObject *bseq = PySequence_Fast(bufs, "bufs must be a sequence of writable buffers");
    if (bseq == NULL) {
        Py_DECREF(pseq);
        return NULL;
    }
    Job *j = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(pseq);
    if (PySequence_Fast_GET_SIZE(bseq) != n) {
        PyErr_Format(PyExc_ValueError, "%zd paths but %zd buffers", n, PySequence_Fast_GET_SIZE(bseq));
        goto fail;
    }
    j = PyMem_Calloc(1, sizeof(Job));
    if (j == NULL)
        goto nomem;
    j->n = n;
    j->paths = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
    j->views = PyMem_Calloc(n ? n : 1, sizeof(Py_buffer));
    j->got = PyMem_Calloc(n ? n : 1, sizeof(Py_ssize_t));
    if (j->paths == NULL || j->views == NULL || j->got == NULL)
        goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(pseq, i), &j->paths[i]))
            goto fail;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(bseq, i), &j->views[i], PyBUF_WRITABLE) < 0)
            goto fail;
        j->nviews++;
    }
    Py_DECREF(pseq);
    Py_DECREF(bseq);
    return j;
nomem:
    PyErr_NoMemory();
fail:
    free_job(j);
    Py_DECREF(pseq);
    Py_DECREF(bseq);
    return NULL;
}

/* (got, seconds), or OSError naming the file that failed; with the GIL. */
static PyObject *job_result(Job *j) {
    if (j->err) {
        PyObject *name = PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(j->paths[j->failed]),
                                                          PyBytes_GET_SIZE(j->paths[j->failed]));
        if (name == NULL)
            return NULL;
        errno = j->err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
        Py_DECREF(name);
        return NULL;
    }
    PyObject *got = PyList_New(j->n);
    if (got == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < j->n; i++) {
        PyObject *v = PyLong_FromSsize_t(j->got[i]);
        if (v == NULL) {
            Py_DECREF(got);
            return NULL;
        }
        PyList_SET_ITEM(got, i, v);
    }
    return Py_BuildValue("(Nd)", got, j->seconds);
}

static PyObject *read_files(PyObject *module, PyObject *args) {
    PyObject *paths, *bufs;
    if (!PyArg_ParseTuple(args, "OO:read_files", &paths, &bufs))
        return NULL;
    Job *j = make_job(paths, bufs);
    if (j == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    run_job(j);
    Py_END_ALLOW_THREADS
    PyObject *out = job_result(j);
    free_job(j);
    return out;
}

/* ---- ReadPool ------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    pthread_cond_t work;   /* threads wait here for a batch */
    pthread_cond_t done;   /* wait() waits here for a running batch */
    Job *head, *tail;      /* live batches in submission order */
    int pending;           /* batches not started (atomics outside the lock) */
    int stop;              /* atomics outside the lock */
    int sleepers, waiters;
    int waking;            /* sleepers signalled and not yet up: not to be signalled again */
    int spinning;          /* threads spinning for a batch (atomics): they need no wake-up */
    long long n_batches, n_by_caller, n_ahead, n_waited, n_slept, n_wakeups;  /* counters, under mu (stats()) */
    long long next_ticket;
    pthread_t *threads;
    int nthreads;
    int started;           /* threads created (joined by close) */
    int closed;
    long spin_us;
    int generation;        /* fork_generation when made: a forked child has none of its threads */
    int ready;             /* mu and the conds were initialised */
    DirCache dirs;         /* directories its batches' files are opened in (see DirCache) */
} ReadPool;

static int spin_until(int *flag, int want, int *stop, long spin_us) { /* without the GIL or lock */
    if (spin_us <= 0)
        return 0;
    double end = now_s() + (double)spin_us * 1e-6;
    do {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) >= want)
            return 1;
        if (stop != NULL && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
            return 1;
        sched_yield();
    } while (now_s() < end);
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE) >= want;
}

static Job *first_pending(ReadPool *p) {
    for (Job *j = p->head; j != NULL; j = j->next)
        if (__atomic_load_n(&j->state, __ATOMIC_RELAXED) == PENDING)
            return j;
    return NULL;
}

static void *worker_main(void *arg) {
    ReadPool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        Job *j = first_pending(p);
        if (j == NULL) {
            pthread_mutex_unlock(&p->mu);
            __atomic_add_fetch(&p->spinning, 1, __ATOMIC_SEQ_CST);
            int woke = spin_until(&p->pending, 1, &p->stop, p->spin_us);
            __atomic_sub_fetch(&p->spinning, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_lock(&p->mu);  /* then look again under the lock: no batch is missed */
            if (!woke && !p->stop && p->pending == 0) {
                p->n_slept++;
                p->sleepers++;
                pthread_cond_wait(&p->work, &p->mu);
                p->sleepers--;
                if (p->waking > 0)
                    p->waking--;
            }
            continue;
        }
        __atomic_store_n(&j->state, RUNNING, __ATOMIC_RELAXED);
        __atomic_store_n(&p->pending, p->pending - 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&p->mu);
        run_job(j);
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&j->state, DONE, __ATOMIC_RELEASE);
        if (p->waiters)
            pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_stop(ReadPool *p) { /* with the GIL; joins the threads without it */
    if (p->closed || !p->ready)
        return;
    p->closed = 1;
    if (p->generation != fork_generation) {
        /* A forked child: the threads are not here, and the lock may have been copied held by one of
           them. Touch nothing (the batches' buffers are the parent's business); the memory is leaked. */
        return;
    }
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    Py_END_ALLOW_THREADS
    p->started = 0;
    /* Free what nobody collects; a batch a wait() in another thread is collecting stays hers. */
    pthread_mutex_lock(&p->mu);
    Job *j = p->head, *keep = NULL, *last = NULL;
    p->head = p->tail = NULL;
    while (j != NULL) {
        Job *next = j->next;
        j->next = NULL;
        if (j->claimed || j->helper) {
            if (last != NULL)
                last->next = j;
            else
                keep = j;
            last = j;
        } else {
            free_job(j);
        }
        j = next;
    }
    p->head = keep;
    p->tail = last;
    pthread_mutex_unlock(&p->mu);
}

static int pool_init(ReadPool *p, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"threads", "spin_us", NULL};
    int threads;
    long spin_us = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|l:ReadPool", kwlist, &threads, &spin_us))
        return -1;
    if (p->ready) {
        PyErr_SetString(PyExc_RuntimeError, "ReadPool is already initialised");
        return -1;
    }
    if (threads < 0 || threads > 1024) {
        PyErr_Format(PyExc_ValueError, "threads must be in [0, 1024], got %d", threads);
        return -1;
    }
    if (spin_us < 0) {
        PyErr_Format(PyExc_ValueError, "spin_us must be >= 0, got %ld", spin_us);
        return -1;
    }
    pthread_mutexattr_t attr;  /* adaptive: a contended lock spins briefly before it sleeps (sections are short) */
    pthread_mutexattr_init(&attr);
#ifdef PTHREAD_MUTEX_ADAPTIVE_NP
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&p->mu, &attr);
    pthread_mutex_init(&p->dirs.mu, NULL);
    pthread_mutexattr_destroy(&attr);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->ready = 1;
    p->spin_us = spin_us;
    p->generation = fork_generation;
    p->threads = PyMem_Calloc(threads ? threads : 1, sizeof(pthread_t));
    if (p->threads == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->nthreads = threads;
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc != 0) {
            pool_stop(p);
            errno = rc;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        p->started++;
    }
    return 0;
}

static void pool_dealloc(ReadPool *p) {
    pool_stop(p);
    if (p->ready && p->generation == fork_generation) {
        dir_cache_free(&p->dirs);
        pthread_mutex_destroy(&p->dirs.mu);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->done);
    }
    PyMem_Free(p->threads);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static int check_open(ReadPool *p) {
    if (!p->ready || p->closed) {
        PyErr_SetString(PyExc_ValueError, "the ReadPool is closed");
        return -1;
    }
    if (p->generation != fork_generation) {
        PyErr_SetString(PyExc_ValueError, "the ReadPool was made in another process (before a fork): make one here");
        return -1;
    }
    return 0;
}

static PyObject *pool_submit(ReadPool *p, PyObject *args) {
    PyObject *paths, *bufs;
    if (!PyArg_ParseTuple(args, "OO:submit", &paths, &bufs))
        return NULL;
    if (check_open(p) < 0)
        return NULL;
    Job *j = make_job(paths, bufs);
    if (j == NULL)
        return NULL;
    j->dirs = &p->dirs;
    pthread_mutex_lock(&p->mu);  /* held briefly by native threads only: no GIL deadlock */
    j->ticket = p->next_ticket++;
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    __atomic_store_n(&p->pending, p->pending + 1, __ATOMIC_RELEASE);
    /* Wake a sleeping thread only if the spinning ones cannot take every pending batch: a wake-up
       is a system call here and, on a VM whose vCPU halted, an interrupt to another CPU. */
    int wake = p->sleepers > p->waking
               && p->pending > __atomic_load_n(&p->spinning, __ATOMIC_SEQ_CST) + p->waking;
    p->waking += wake;
    p->n_batches++;
    p->n_wakeups += wake;
    long long ticket = j->ticket;
    pthread_mutex_unlock(&p->mu);
    if (wake)  /* after unlocking, so the woken thread does not block on the lock at once */
        pthread_cond_signal(&p->work);
    return PyLong_FromLongLong(ticket);
}

static void unlink_job(ReadPool *p, Job *j) { /* under mu */
    Job *prev = NULL;
    for (Job *k = p->head; k != NULL; prev = k, k = k->next) {
        if (k == j) {
            if (prev != NULL)
                prev->next = j->next;
            else
                p->head = j->next;
            if (p->tail == j)
                p->tail = prev;
            j->next = NULL;
            return;
        }
    }
}

/* Run a pending batch on the calling thread (with the GIL, under mu; returns under mu, the batch done). */
static void run_here(ReadPool *p, Job *j) {
    __atomic_store_n(&j->state, RUNNING, __ATOMIC_RELAXED);
    __atomic_store_n(&p->pending, p->pending - 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->mu);
    Py_BEGIN_ALLOW_THREADS
    run_job(j);
    Py_END_ALLOW_THREADS
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&j->state, DONE, __ATOMIC_RELEASE);
}

static PyObject *pool_wait(ReadPool *p, PyObject *args) {
    long long ticket;
    if (!PyArg_ParseTuple(args, "L:wait", &ticket))
        return NULL;
    if (check_open(p) < 0)
        return NULL;
    pthread_mutex_lock(&p->mu);
    Job *j = p->head;
    while (j != NULL && j->ticket != ticket)
        j = j->next;
    if (j == NULL || j->claimed) {
        pthread_mutex_unlock(&p->mu);
        PyErr_Format(PyExc_KeyError, "no batch %lld to collect (never submitted, or collected already)", ticket);
        return NULL;
    }
    j->claimed = 1;
    if (j->state == PENDING) {  /* no thread has started it: run it here rather than wait */
        p->n_by_caller++;
        run_here(p, j);
    } else {
        /* A thread is reading it: rather than spin or sleep (taking a CPU from the readers), read a
           later batch no thread has started yet, while there is one; its wait() then finds it done. */
        Job *k;
        while (j->state != DONE && (k = first_pending(p)) != NULL) {
            p->n_ahead++;
            k->helper = 1;
            run_here(p, k);
            k->helper = 0;
            if (p->closed && !k->claimed) {  /* closed meanwhile (another thread): nobody collects it */
                unlink_job(p, k);
                pthread_mutex_unlock(&p->mu);
                free_job(k);  /* releases buffers: not under the lock */
                pthread_mutex_lock(&p->mu);
            } else if (p->waiters) {
                pthread_cond_broadcast(&p->done);
            }
        }
        pthread_mutex_unlock(&p->mu);
        int done = __atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == DONE;
        if (!done) {
            Py_BEGIN_ALLOW_THREADS
            done = spin_until(&j->state, DONE, NULL, p->spin_us);
            Py_END_ALLOW_THREADS
            pthread_mutex_lock(&p->mu);
            p->n_waited++;
            pthread_mutex_unlock(&p->mu);
        }
        while (!done) {
            Py_BEGIN_ALLOW_THREADS
            pthread_mutex_lock(&p->mu);
            p->waiters++;
            if (j->state != DONE) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 50 * 1000 * 1000;  /* wake to check for signals (Ctrl-C) */
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec += 1;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&p->done, &p->mu, &until);
            }
            p->waiters--;
            done = j->state == DONE;
            pthread_mutex_unlock(&p->mu);
            Py_END_ALLOW_THREADS
            if (!done && PyErr_CheckSignals() < 0) {
                pthread_mutex_lock(&p->mu);
                j->claimed = 0;  /* can be waited for again */
                pthread_mutex_unlock(&p->mu);
                return NULL;
            }
        }
        pthread_mutex_lock(&p->mu);
    }
    unlink_job(p, j);
    pthread_mutex_unlock(&p->mu);
    PyObject *out = job_result(j);
    free_job(j);
    return out;
}

static PyObject *pool_stats(ReadPool *p, PyObject *Py_UNUSED(ignored)) {
    if (!p->ready)
        return PyDict_New();
    pthread_mutex_lock(&p->mu);
    long long b = p->n_batches, c = p->n_by_caller, a = p->n_ahead, w = p->n_waited, s = p->n_slept,
              k = p->n_wakeups;
    pthread_mutex_unlock(&p->mu);
    return Py_BuildValue("{sLsLsLsLsLsL}", "batches", b, "run_by_caller", c, "run_ahead_by_caller", a,
                         "waited_for_a_thread", w, "thread_sleeps", s, "wakeups", k);
}

static PyObject *pool_close(ReadPool *p, PyObject *Py_UNUSED(ignored)) {
    pool_stop(p);
    Py_RETURN_NONE;
}

static PyObject *pool_enter(ReadPool *p, PyObject *Py_UNUSED(ignored)) {
    if (check_open(p) < 0)
        return NULL;
    Py_INCREF(p);
    return (PyObject *)p;
}

static PyObject *pool_exit(ReadPool *p, PyObject *Py_UNUSED(args)) {
    pool_stop(p);
    Py_RETURN_FALSE;
}

static PyObject *pool_get_threads(ReadPool *p, void *Py_UNUSED(closure)) { return PyLong_FromLong(p->nthreads); }

static PyObject *pool_get_closed(ReadPool *p, void *Py_UNUSED(closure)) { return PyBool_FromLong(p->closed); }

static PyMethodDef pool_methods[] = {
    {"submit", (PyCFunction)pool_submit, METH_VARARGS,
     "submit(paths, bufs) -> ticket: queue one batch of whole-file reads (path i into buffer i)."},
    {"wait", (PyCFunction)pool_wait, METH_VARARGS,
     "wait(ticket) -> (got, seconds): the batch's bytes read per file and its read time; a batch no "
     "thread has started is run by the caller. OSError names a file that could not be read."},
    {"close", (PyCFunction)pool_close, METH_NOARGS, "Stop and join the threads; drop batches never collected."},
    {"stats", (PyCFunction)pool_stats, METH_NOARGS,
     "Counters since the pool was made: batches submitted, run_by_caller (wait() ran it), "
     "run_ahead_by_caller (a wait() for a running batch ran a later one meanwhile), "
     "waited_for_a_thread (wait() found it running), thread_sleeps, wakeups (sleeping threads woken)."},
    {"__enter__", (PyCFunction)pool_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)pool_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef pool_getset[] = {
    {"threads", (getter)pool_get_threads, NULL, "number of native reader threads", NULL},
    {"closed", (getter)pool_get_closed, NULL, "whether close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ReadPoolType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dlio_core.engine._cread.ReadPool",
    .tp_basicsize = sizeof(ReadPool),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ReadPool(threads, spin_us=0): native threads that read batches of whole files (see the module).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pool_init,
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_methods = pool_methods,
    .tp_getset = pool_getset,
};

/* spans_match(bufs, spans) -> bool: whether every buffer holds its expected bytes (see the module). */
static PyObject *spans_match(PyObject *module, PyObject *args) {
    PyObject *bufs, *spans;
    if (!PyArg_ParseTuple(args, "O!O!:spans_match", &PyList_Type, &bufs, &PyList_Type, &spans))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(bufs);
    if (PyList_GET_SIZE(spans) != n) {
        PyErr_Format(PyExc_ValueError, "%zd buffers but %zd span tuples", n, PyList_GET_SIZE(spans));
        return NULL;
    }
    int same = 1;
    for (Py_ssize_t i = 0; i < n && same; i++) {
        PyObject *want = PyList_GET_ITEM(spans, i);
        if (!PyTuple_Check(want) || PyTuple_GET_SIZE(want) % 2) {
            PyErr_SetString(PyExc_TypeError, "each span tuple must be (offset, bytes, offset, bytes, ...)");
            return NULL;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(PyList_GET_ITEM(bufs, i), &view, PyBUF_SIMPLE) < 0)
            return NULL;
        for (Py_ssize_t k = 0; k + 1 < PyTuple_GET_SIZE(want) && same; k += 2) {
            Py_ssize_t off = PyLong_AsSsize_t(PyTuple_GET_ITEM(want, k));
            PyObject *expect = PyTuple_GET_ITEM(want, k + 1);
            if ((off == -1 && PyErr_Occurred()) || !PyBytes_Check(expect)) {
                PyBuffer_Release(&view);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "span bytes must be bytes");
                return NULL;
            }
            Py_ssize_t len = PyBytes_GET_SIZE(expect);
            same = off >= 0 && off <= view.len && len <= view.len - off
                   && memcmp((const char *)view.buf + off, PyBytes_AS_STRING(expect), (size_t)len) == 0;
        }
        PyBuffer_Release(&view);
    }
    return PyBool_FromLong(same);
}

static PyMethodDef module_methods[] = {
    {"read_files", read_files, METH_VARARGS,
     "read_files(paths, bufs) -> (got, seconds): read each file whole into its buffer, GIL released."},
    {"spans_match", spans_match, METH_VARARGS,
     "spans_match(bufs, spans) -> bool: whether each buffer bufs[i] holds, for every (offset, bytes) "
     "pair of the tuple spans[i], those bytes at that offset (one call for a batch's header checks)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cread_module = {
    PyModuleDef_HEAD_INIT, "_cread",
    "Whole-file reads of local files with the GIL released (see dlio_core/engine/_cread.c).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__cread(void) {
    if (PyType_Ready(&ReadPoolType) < 0)
        return NULL;
    static int registered = 0;
    if (!registered) {
        if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return NULL;
        }
        registered = 1;
    }
    PyObject *m = PyModule_Create(&cread_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ReadPoolType);
    if (PyModule_AddObject(m, "ReadPool", (PyObject *)&ReadPoolType) < 0) {
        Py_DECREF(&ReadPoolType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
