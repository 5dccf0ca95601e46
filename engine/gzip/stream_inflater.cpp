#include "engine/gzip/stream_inflater.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include <climits>
#include <zlib.h>

namespace podpipe::gzip {

struct stream_inflater::impl {
    enum class state {
        start,        ///< before the first member
        in_member,    ///< zlib owns the bytes (header, data or trailer of a member)
        boundary,     ///< after a member's trailer: next is 1f (member) or 00 (padding)
        zero_padding, ///< only zero bytes may follow
        failed,
    };

    z_stream zs{};
    gz_header head{};
    state st = state::start;
    std::size_t members = 0;
    std::error_code error;

    impl() {
        if (inflateInit2(&zs, 15 + 16) != Z_OK)
            throw std::bad_alloc();
        watch_header();
    }

    ~impl() { inflateEnd(&zs); }

    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    // gz_header.done turns 1 once zlib has parsed the whole member header (-1 when the magic
    // is wrong): errors before that are header errors. inflateReset() drops the registration, so
    // redo it each member.
    void watch_header() {
        head = gz_header{};
        inflateGetHeader(&zs, &head);
    }

    failure<std::error_code> set_error(errc e) {
        st = state::failed;
        error = make_error_code(e);
        return fail(error);
    }

    errc classify_zlib_error() const {
        if (head.done != 1)
            return errc::bad_header;
        if (zs.msg != nullptr) {
            if (std::strcmp(zs.msg, "incorrect data check") == 0)
                return errc::bad_crc;
            if (std::strcmp(zs.msg, "incorrect length check") == 0)
                return errc::bad_length;
        }
        return errc::corrupt_deflate;
    }
};

stream_inflater::stream_inflater()
    : impl_(std::make_unique<impl>()) {}

stream_inflater::~stream_inflater() = default;
stream_inflater::stream_inflater(stream_inflater&&) noexcept = default;
stream_inflater& stream_inflater::operator=(stream_inflater&&) noexcept = default;

std::size_t stream_inflater::members_completed() const noexcept { return impl_->members; }

void stream_inflater::reset() {
    inflateReset(&impl_->zs);
    impl_->watch_header();
    impl_->st = impl::state::start;
    impl_->members = 0;
    impl_->error = {};
}

result<stream_inflater::step> stream_inflater::inflate(std::span<const std::byte> in,
                                                       std::span<std::byte> out) {
    impl& m = *impl_;
    step s;
    for (;;) {
        switch (m.st) {
        case impl::state::failed:
            return fail(m.error);
        case impl::state::zero_padding: {
            const auto rest = in.subspan(s.consumed);
            const auto nz = std::find_if(rest.begin(), rest.end(),
                                         [](std::byte b) { return b != std::byte{0}; });
            if (nz != rest.end())
                return m.set_error(errc::bad_header);
            s.consumed = in.size();
            return s;
        }
        case impl::state::boundary:
            if (s.consumed == in.size())
                return s;
            if (in[s.consumed] == std::byte{0}) {
                m.st = impl::state::zero_padding;
                continue;
            }
            if (in[s.consumed] != std::byte{0x1f})
                return m.set_error(errc::bad_header);
            inflateReset(&m.zs);
            m.watch_header();
            m.st = impl::state::in_member;
            continue;
        case impl::state::start:
            if (s.consumed == in.size())
                return s;
            m.st = impl::state::in_member;
            continue;
        case impl::state::in_member:
            break;
        }

        // in_member: let zlib run until input or output runs out, or the member ends.
        if (s.produced == out.size() && s.consumed == in.size())
            return s;
        const std::size_t in_avail = std::min<std::size_t>(in.size() - s.consumed, UINT_MAX / 2);
        const std::size_t out_avail = std::min<std::size_t>(out.size() - s.produced, UINT_MAX / 2);
        // zlib's API takes non-const input pointers but never writes through them.
        m.zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + s.consumed));
        m.zs.avail_in = static_cast<uInt>(in_avail);
        // zlib rejects a null next_out even with avail_out == 0 (an empty span's data()).
        Bytef dummy_out = 0;
        m.zs.next_out =
            out_avail != 0 ? reinterpret_cast<Bytef*>(out.data() + s.produced) : &dummy_out;
        m.zs.avail_out = static_cast<uInt>(out_avail);
        const int rc = ::inflate(&m.zs, Z_NO_FLUSH);
        s.consumed += in_avail - m.zs.avail_in;
        s.produced += out_avail - m.zs.avail_out;
        switch (rc) {
        case Z_STREAM_END:
            ++m.members;
            m.st = impl::state::boundary;
            continue;
        case Z_OK:
            continue;
        case Z_BUF_ERROR: // no progress possible: input or output exhausted
            return s;
        case Z_DATA_ERROR:
            return m.set_error(m.classify_zlib_error());
        case Z_MEM_ERROR:
            throw std::bad_alloc();
        default: // Z_NEED_DICT (impossible for gzip), Z_STREAM_ERROR
            return m.set_error(errc::bad_header);
        }
    }
}

result<void> stream_inflater::finish() {
    impl& m = *impl_;
    switch (m.st) {
    case impl::state::failed:
        return fail(m.error);
    case impl::state::start:
    case impl::state::in_member:
        return m.set_error(errc::truncated);
    case impl::state::boundary:
    case impl::state::zero_padding:
        break;
    }
    return {};
}

} // namespace podpipe::gzip
