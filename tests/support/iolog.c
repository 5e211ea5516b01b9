/* iolog: an LD_PRELOAD shim that logs, and can fail, the file I/O of one SQLite store.
 *
 * Built by tests/support/iolog.py (gcc -shared -fPIC) into a temporary folder and
 * preloaded into a child process; it never runs in the test process itself. It
 * interposes the libc calls beneath SQLite's unix VFS (open, pwrite, ftruncate, fsync,
 * fdatasync, unlink, pread, close and their 64-bit names) for the files whose path starts
 * with $EDGEREC_IOLOG_MATCH (the database, its -wal and -shm) and for that folder (the
 * directory fsync SQLite does after creating a WAL).
 *
 * Logging (reliability case B2, as dm-log-writes or ALICE record a workload): with
 * $EDGEREC_IOLOG_OUT set, every successful write, truncate, sync and unlink of those files
 * is appended to that file, with the bytes written, in the order the process issued
 * them, together with the marks the workload adds (edgerec_iolog_mark: an acknowledged
 * write). tests/support/iolog.py rebuilds crash states from it offline.
 *
 * Faults (case B8): edgerec_iolog_fail("write" | "sync" | "read", n) makes the n-th next
 * such call on those files fail once with EIO, as a failing disk would, beneath SQLite.
 *
 * Record layout (little-endian): u8 op, u8 file id, u16 0, u32 length, i64 offset, then
 * `length` bytes: OPEN (the path; offset 1 if the call created the file), WRITE (the
 * bytes, at offset), TRUNC (offset = new size), SYNC, UNLINK (the path), MARK (the
 * workload's bytes), FAIL (offset = the op that was failed).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { OP_OPEN = 1, OP_WRITE, OP_TRUNC, OP_SYNC, OP_UNLINK, OP_MARK, OP_FAIL };
enum { FAIL_NONE = 0, FAIL_WRITE, FAIL_SYNC, FAIL_READ };
#define MAX_FDS 4096
#define MAX_FILES 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char match[4096];
static size_t match_len;
static char folder[4096];
static int log_fd = -1;
static signed char fd_file[MAX_FDS]; /* fd -> file id + 1 (0: not watched) */
static char *files[MAX_FILES];
static int nfiles;
static int fail_kind, fail_countdown;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pread64)(int, void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);

__attribute__((constructor)) static void init(void) {
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_pread = dlsym(RTLD_NEXT, "pread");
    real_pread64 = dlsym(RTLD_NEXT, "pread64");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    const char *m = getenv("EDGEREC_IOLOG_MATCH");
    if (m && *m && strlen(m) < sizeof match) {
        strcpy(match, m);
        match_len = strlen(m);
        strcpy(folder, m);
        char *slash = strrchr(folder, '/');
        if (slash && slash != folder) *slash = 0;
    }
    const char *out = getenv("EDGEREC_IOLOG_OUT");
    if (out && *out) log_fd = real_open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static int watched(const char *path) {
    if (!match_len || !path) return 0;
    return strncmp(path, match, match_len) == 0 || strcmp(path, folder) == 0;
}

static int file_id(const char *path) {
    for (int i = 0; i < nfiles; i++)
        if (strcmp(files[i], path) == 0) return i;
    if (nfiles == MAX_FILES) return MAX_FILES - 1;
    files[nfiles] = strdup(path);
    return nfiles++;
}

static void emit(int op, int file, int64_t offset, const void *data, uint32_t len) {
    if (log_fd < 0) return;
    unsigned char head[16];
    head[0] = (unsigned char)op;
    head[1] = (unsigned char)file;
    head[2] = head[3] = 0;
    memcpy(head + 4, &len, 4);
    memcpy(head + 8, &offset, 8);
    real_write(log_fd, head, sizeof head);
    const char *p = data;
    while (len > 0) {
        ssize_t n = real_write(log_fd, p, len);
        if (n <= 0) break;
        p += n;
        len -= (uint32_t)n;
    }
}

static int watched_fd(int fd) { return fd >= 0 && fd < MAX_FDS && fd_file[fd]; }

/* Whether this call is the one to fail (kind matches and the countdown reaches zero). */
static int should_fail(int kind, int fd) {
    if (!watched_fd(fd) || fail_kind != kind) return 0;
    if (--fail_countdown > 0) return 0;
    fail_kind = FAIL_NONE;
    emit(OP_FAIL, fd_file[fd] - 1, kind, NULL, 0);
    return 1;
}

static int after_open(const char *path, int fd, int created) {
    if (fd >= 0 && fd < MAX_FDS && watched(path)) {
        pthread_mutex_lock(&lock);
        int id = file_id(path);
        fd_file[fd] = (signed char)(id + 1);
        emit(OP_OPEN, id, created, path, (uint32_t)strlen(path));
        pthread_mutex_unlock(&lock);
    }
    return fd;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

#define OPEN_BODY(call)                                 \
    mode_t mode = 0;                                    \
    if (flags & (O_CREAT | O_TMPFILE)) {                \
        va_list ap;                                     \
        va_start(ap, flags);                            \
        mode = va_arg(ap, mode_t);                      \
        va_end(ap);                                     \
    }                                                   \
    int before = watched(path) ? exists(path) : 1;      \
    int fd = call;                                      \
    return after_open(path, fd, !before && fd >= 0);

int open(const char *path, int flags, ...) { OPEN_BODY(real_open(path, flags, mode)) }
int open64(const char *path, int flags, ...) { OPEN_BODY(real_open64(path, flags, mode)) }
int openat(int dir, const char *path, int flags, ...) {
    OPEN_BODY(real_openat(dir, path, flags, mode))
}
int openat64(int dir, const char *path, int flags, ...) {
    OPEN_BODY(real_openat64(dir, path, flags, mode))
}

int close(int fd) {
    if (fd >= 0 && fd < MAX_FDS) fd_file[fd] = 0;
    return real_close(fd);
}

static ssize_t logged_pwrite(ssize_t (*real)(int, const void *, size_t, off_t), int fd,
                             const void *buf, size_t n, off_t off) {
    pthread_mutex_lock(&lock);
    if (should_fail(FAIL_WRITE, fd)) {
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    ssize_t done = real(fd, buf, n, off);
    if (done > 0 && watched_fd(fd)) emit(OP_WRITE, fd_file[fd] - 1, off, buf, (uint32_t)done);
    pthread_mutex_unlock(&lock);
    return done;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    return logged_pwrite(real_pwrite, fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    return logged_pwrite(real_pwrite64, fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (!watched_fd(fd)) return real_write(fd, buf, n);
    off_t off = lseek(fd, 0, SEEK_CUR);
    pthread_mutex_lock(&lock);
    if (should_fail(FAIL_WRITE, fd)) {
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    ssize_t done = real_write(fd, buf, n);
    if (done > 0) emit(OP_WRITE, fd_file[fd] - 1, off, buf, (uint32_t)done);
    pthread_mutex_unlock(&lock);
    return done;
}

static ssize_t failing_pread(ssize_t (*real)(int, void *, size_t, off_t), int fd, void *buf,
                             size_t n, off_t off) {
    pthread_mutex_lock(&lock);
    int fail = should_fail(FAIL_READ, fd);
    pthread_mutex_unlock(&lock);
    if (fail) {
        errno = EIO;
        return -1;
    }
    return real(fd, buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    return failing_pread(real_pread, fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off) {
    return failing_pread(real_pread64, fd, buf, n, off);
}

static int logged_truncate(int (*real)(int, off_t), int fd, off_t size) {
    pthread_mutex_lock(&lock);
    if (should_fail(FAIL_WRITE, fd)) {
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    int rc = real(fd, size);
    if (rc == 0 && watched_fd(fd)) emit(OP_TRUNC, fd_file[fd] - 1, size, NULL, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}

int ftruncate(int fd, off_t size) { return logged_truncate(real_ftruncate, fd, size); }
int ftruncate64(int fd, off_t size) { return logged_truncate(real_ftruncate64, fd, size); }

static int logged_sync(int (*real)(int), int fd) {
    pthread_mutex_lock(&lock);
    if (should_fail(FAIL_SYNC, fd)) {
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    int rc = real(fd);
    if (rc == 0 && watched_fd(fd)) emit(OP_SYNC, fd_file[fd] - 1, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}

int fsync(int fd) { return logged_sync(real_fsync, fd); }
int fdatasync(int fd) { return logged_sync(real_fdatasync, fd); }

int unlink(const char *path) {
    int rc = real_unlink(path);
    if (rc == 0 && watched(path)) {
        pthread_mutex_lock(&lock);
        emit(OP_UNLINK, file_id(path), 0, path, (uint32_t)strlen(path));
        pthread_mutex_unlock(&lock);
    }
    return rc;
}

/* Called by the workload (through ctypes) after an acknowledged write. */
void edgerec_iolog_mark(const char *data) {
    pthread_mutex_lock(&lock);
    emit(OP_MARK, 0, 0, data, (uint32_t)strlen(data));
    pthread_mutex_unlock(&lock);
}

/* Fail the n-th next `kind` call ("write", "sync" or "read") on a watched file, once. */
void edgerec_iolog_fail(const char *kind, int n) {
    pthread_mutex_lock(&lock);
    fail_kind = strcmp(kind, "write") == 0  ? FAIL_WRITE
                : strcmp(kind, "sync") == 0 ? FAIL_SYNC
                : strcmp(kind, "read") == 0 ? FAIL_READ
                                            : FAIL_NONE;
    fail_countdown = n;
    pthread_mutex_unlock(&lock);
}
