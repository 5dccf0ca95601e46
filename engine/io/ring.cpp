#include "engine/io/ring.hpp"

#include "engine/common/assert.hpp"
#include "engine/io/error.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <utility>

#include <liburing.h>

namespace podpipe::io {
namespace {

constexpr std::uint64_t no_fault = ~std::uint64_t{0};

bool env_disables_io_uring() {
    const char* v = std::getenv("PODPIPE_NO_IO_URING");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

bool probe_ring(struct io_uring* r) {
    struct io_uring_probe* p = io_uring_get_probe_ring(r);
    if (p == nullptr)
        return false;
    bool ok = true;
    for (int op : {IORING_OP_OPENAT, IORING_OP_OPENAT2, IORING_OP_STATX, IORING_OP_READ,
                   IORING_OP_WRITE, IORING_OP_CLOSE})
        ok = ok && io_uring_opcode_supported(p, op) != 0;
    io_uring_free_probe(p);
    return ok;
}

bool detect_io_uring() {
    if (env_disables_io_uring())
        return false;
    struct io_uring r;
    if (io_uring_queue_init(2, &r, 0) < 0) // ENOSYS, EPERM (io_uring_disabled), ENOMEM...
        return false;
    const bool ok = probe_ring(&r);
    io_uring_queue_exit(&r);
    return ok;
}

enum class op_kind : std::uint8_t { openat, openat2, statx, read, write, close };

// A queued operation, kept only by the synchronous fallback.
struct op {
    op_kind kind;
    std::uint64_t user_data;
    int fd;
    const char* path;
    int flags;
    unsigned mode_or_mask;
    void* buf;
    const void* cbuf;
    unsigned len;
    std::uint64_t offset;
    const ::open_how* how;
    struct ::statx* stx;
};

int run_sync(const op& o) {
    long r = 0;
    switch (o.kind) {
    case op_kind::openat:
        r = ::openat(o.fd, o.path, o.flags, static_cast<mode_t>(o.mode_or_mask));
        break;
    case op_kind::openat2:
        r = ::syscall(SYS_openat2, o.fd, o.path, o.how, sizeof(::open_how));
        break;
    case op_kind::statx:
        r = ::statx(o.fd, o.path, o.flags, o.mode_or_mask, o.stx);
        break;
    case op_kind::read:
        r = ::pread(o.fd, o.buf, o.len, static_cast<off_t>(o.offset));
        break;
    case op_kind::write:
        r = ::pwrite(o.fd, o.cbuf, o.len, static_cast<off_t>(o.offset));
        break;
    case op_kind::close:
        r = ::close(o.fd);
        break;
    }
    return r < 0 ? -errno : static_cast<int>(r);
}

} // namespace

bool io_uring_available() {
    static const bool available = detect_io_uring();
    return available;
}

struct ring::impl {
    bool uring = false;
    struct io_uring r {};
    unsigned capacity = 0;
    unsigned in_flight = 0;   // queued + submitted, completion not yet returned
    unsigned unsubmitted = 0; // io_uring: SQEs prepared but not yet submitted
    std::vector<op> queued;   // fallback only
    std::deque<completion> synthetic; // injected faults
    std::uint64_t fault_countdown = no_fault;

    ~impl() {
        if (!uring)
            return;
        // Drain: the kernel may still write into caller memory until each completion arrives.
        std::vector<completion> sink;
        while (in_flight > synthetic.size()) {
            int rc = io_uring_submit_and_wait(&r, 1);
            if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
                break; // ring is broken; nothing more can complete
            struct io_uring_cqe* cqe = nullptr;
            unsigned head = 0, n = 0;
            io_uring_for_each_cqe(&r, head, cqe) {
                ++n;
            }
            io_uring_cq_advance(&r, n);
            in_flight -= n;
        }
        io_uring_queue_exit(&r);
    }

    // Returns true when the operation was consumed by fault injection.
    bool inject(std::uint64_t user_data, op_kind kind, int fd) {
        if (fault_countdown == no_fault)
            return false;
        if (fault_countdown-- != 0)
            return false;
        fault_countdown = no_fault;
        if (kind == op_kind::close)
            ::close(fd);
        synthetic.push_back({user_data, -EIO});
        ++in_flight;
        return true;
    }

    struct io_uring_sqe* sqe() {
        PODPIPE_CHECK(in_flight < capacity, "io::ring: queue beyond capacity");
        struct io_uring_sqe* s = io_uring_get_sqe(&r);
        PODPIPE_CHECK(s != nullptr, "io::ring: no SQE although below capacity");
        ++in_flight;
        ++unsubmitted;
        return s;
    }

    void push(const op& o) {
        PODPIPE_CHECK(in_flight < capacity, "io::ring: queue beyond capacity");
        if (inject(o.user_data, o.kind, o.fd))
            return;
        if (uring) {
            struct io_uring_sqe* s = sqe();
            switch (o.kind) {
            case op_kind::openat:
                io_uring_prep_openat(s, o.fd, o.path, o.flags,
                                     static_cast<mode_t>(o.mode_or_mask));
                break;
            case op_kind::openat2:
                io_uring_prep_openat2(s, o.fd, o.path, const_cast<::open_how*>(o.how));
                break;
            case op_kind::statx:
                io_uring_prep_statx(s, o.fd, o.path, o.flags, o.mode_or_mask, o.stx);
                break;
            case op_kind::read:
                io_uring_prep_read(s, o.fd, o.buf, o.len, o.offset);
                break;
            case op_kind::write:
                io_uring_prep_write(s, o.fd, o.cbuf, o.len, o.offset);
                break;
            case op_kind::close:
                io_uring_prep_close(s, o.fd);
                break;
            }
            io_uring_sqe_set_data64(s, o.user_data);
            return;
        }
        queued.push_back(o);
        ++in_flight;
    }
};

ring::ring(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
ring::ring(ring&&) noexcept = default;
ring& ring::operator=(ring&&) noexcept = default;
ring::~ring() = default;

result<ring> ring::create(unsigned entries, bool prefer_io_uring) {
    auto p = std::make_unique<impl>();
    p->capacity = entries == 0 ? 1 : entries;
    if (prefer_io_uring && io_uring_available()) {
        // CQ is twice the SQ by default and we never exceed `capacity` in flight, so the CQ
        // cannot overflow.
        int rc = io_uring_queue_init(p->capacity, &p->r, 0);
        if (rc < 0)
            return fail(make_error_code(errc::io_failed));
        p->uring = true;
        p->queued.clear();
    } else {
        p->queued.reserve(p->capacity);
    }
    return ring(std::move(p));
}

bool ring::uses_io_uring() const noexcept { return impl_->uring; }
unsigned ring::capacity() const noexcept { return impl_->capacity; }
unsigned ring::in_flight() const noexcept { return impl_->in_flight; }

void ring::openat(std::uint64_t ud, int dirfd, const char* path, int flags, mode_t mode) {
    op o{};
    o.kind = op_kind::openat;
    o.user_data = ud;
    o.fd = dirfd;
    o.path = path;
    o.flags = flags;
    o.mode_or_mask = mode;
    impl_->push(o);
}

void ring::openat2(std::uint64_t ud, int dirfd, const char* path, const ::open_how* how) {
    op o{};
    o.kind = op_kind::openat2;
    o.user_data = ud;
    o.fd = dirfd;
    o.path = path;
    o.how = how;
    impl_->push(o);
}

void ring::statx(std::uint64_t ud, int dirfd, const char* path, int flags, unsigned mask,
                 struct ::statx* out) {
    op o{};
    o.kind = op_kind::statx;
    o.user_data = ud;
    o.fd = dirfd;
    o.path = path;
    o.flags = flags;
    o.mode_or_mask = mask;
    o.stx = out;
    impl_->push(o);
}

void ring::read(std::uint64_t ud, int fd, void* buf, unsigned len, std::uint64_t offset) {
    op o{};
    o.kind = op_kind::read;
    o.user_data = ud;
    o.fd = fd;
    o.buf = buf;
    o.len = len;
    o.offset = offset;
    impl_->push(o);
}

void ring::write(std::uint64_t ud, int fd, const void* buf, unsigned len, std::uint64_t offset) {
    op o{};
    o.kind = op_kind::write;
    o.user_data = ud;
    o.fd = fd;
    o.cbuf = buf;
    o.len = len;
    o.offset = offset;
    impl_->push(o);
}

void ring::close(std::uint64_t ud, int fd) {
    op o{};
    o.kind = op_kind::close;
    o.user_data = ud;
    o.fd = fd;
    impl_->push(o);
}

void ring::fail_op_for_test(std::uint64_t n) noexcept { impl_->fault_countdown = n; }

result<void> ring::submit_and_wait(unsigned min_complete, std::vector<completion>& out) {
    impl& s = *impl_;
    // Injected faults complete first; they count towards min_complete.
    while (!s.synthetic.empty()) {
        out.push_back(s.synthetic.front());
        s.synthetic.pop_front();
        --s.in_flight;
        min_complete = min_complete > 0 ? min_complete - 1 : 0;
    }
    if (!s.uring) {
        for (const op& o : s.queued)
            out.push_back({o.user_data, run_sync(o)});
        s.in_flight -= static_cast<unsigned>(s.queued.size());
        s.queued.clear();
        return {};
    }
    if (min_complete > s.in_flight)
        min_complete = s.in_flight;
    for (;;) {
        int rc = io_uring_submit_and_wait(&s.r, min_complete);
        if (rc >= 0) {
            s.unsubmitted = 0;
            break;
        }
        if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
            // EBUSY/EAGAIN: the kernel wants completions reaped first; take what is there.
            if (io_uring_cq_ready(&s.r) > 0) {
                min_complete = 0;
                if (rc != -EINTR)
                    break;
            }
            continue;
        }
        return fail(make_error_code(errc::io_failed));
    }
    struct io_uring_cqe* cqe = nullptr;
    unsigned head = 0, n = 0;
    io_uring_for_each_cqe(&s.r, head, cqe) {
        out.push_back({io_uring_cqe_get_data64(cqe), cqe->res});
        ++n;
    }
    io_uring_cq_advance(&s.r, n);
    s.in_flight -= n;
    return {};
}

} // namespace podpipe::io
