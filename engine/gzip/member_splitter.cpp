#include "engine/gzip/member_splitter.hpp"

#include "engine/gzip/detail/header.hpp"

#include <algorithm>

namespace podpipe::gzip {

member_splitter::member_splitter(std::size_t max_member_bytes)
    : max_member_bytes_(std::min(max_member_bytes, gzip::max_member_bytes)) {}

std::span<const std::byte> member_splitter::pending() const noexcept {
    if (emitted_from_buf_)
        return {};
    return {buf_.data(), buf_.size()};
}

void member_splitter::reset() noexcept {
    buf_.clear();
    need_bytes_ = 0;
    info_ = {};
    state_ = state::boundary;
    stopped_kind_ = head_kind::need_more;
    error_ = {};
    members_ = 0;
    emitted_from_buf_ = false;
}

result<void> member_splitter::finish() const {
    switch (state_) {
    case state::failed:
        return fail(error_);
    case state::stopped:
    case state::padding:
        return {};
    case state::boundary:
        if (members_ == 0)
            return fail(errc::truncated);
        return {};
    case state::header:
    case state::body:
        return fail(errc::truncated);
    }
    return {};
}

result<member_splitter::item> member_splitter::next(std::span<const std::byte>& in) {
    if (emitted_from_buf_) {
        buf_.clear();
        emitted_from_buf_ = false;
    }
    const auto take = [&](std::size_t n) {
        n = std::min(n, in.size());
        buf_.insert(buf_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
        in = in.subspan(n);
    };
    const auto failed = [&](std::error_code e) -> failure<std::error_code> {
        state_ = state::failed;
        error_ = e;
        return fail(e);
    };
    // A podpipe head was found: check the limit and wait for member_bytes in total.
    const auto start_body = [&](const head_info& h) -> result<void> {
        if (h.member_bytes > max_member_bytes_)
            return failed(make_error_code(errc::too_large));
        info_ = h;
        need_bytes_ = h.member_bytes;
        state_ = state::body;
        return {};
    };

    for (;;) {
        switch (state_) {
        case state::failed:
            return fail(error_);
        case state::stopped:
            return item{stopped_kind_, {}, {}};
        case state::padding: {
            if (std::any_of(in.begin(), in.end(), [](std::byte b) { return b != std::byte{0}; }))
                return failed(make_error_code(errc::bad_header));
            in = in.subspan(in.size());
            return item{};
        }
        case state::boundary: {
            if (in.empty())
                return item{};
            if (members_ > 0 && in[0] == std::byte{0}) {
                state_ = state::padding;
                continue;
            }
            auto s = detail::scan_header(in, false);
            if (!s)
                return failed(s.error());
            switch (s->info.kind) {
            case head_kind::foreign_gzip:
            case head_kind::not_gzip:
                state_ = state::stopped;
                stopped_kind_ = s->info.kind;
                return item{stopped_kind_, {}, {}};
            case head_kind::need_more:
                state_ = state::header;
                need_bytes_ = s->prefix_needed;
                take(in.size());
                return item{};
            case head_kind::podpipe_member: {
                if (auto r = start_body(s->info); !r)
                    return fail(r.error());
                if (in.size() >= info_.member_bytes) { // whole member in the caller's block
                    item it{head_kind::podpipe_member, in.first(info_.member_bytes), info_};
                    in = in.subspan(info_.member_bytes);
                    state_ = state::boundary;
                    ++members_;
                    return it;
                }
                buf_.reserve(info_.member_bytes);
                take(in.size());
                return item{};
            }
            }
            continue;
        }
        case state::header: {
            if (buf_.size() < need_bytes_) {
                if (in.empty())
                    return item{};
                take(need_bytes_ - buf_.size());
                if (buf_.size() < need_bytes_)
                    return item{};
            }
            auto s = detail::scan_header({buf_.data(), buf_.size()}, false);
            if (!s)
                return failed(s.error());
            switch (s->info.kind) {
            case head_kind::foreign_gzip:
            case head_kind::not_gzip:
                state_ = state::stopped;
                stopped_kind_ = s->info.kind;
                return item{stopped_kind_, {}, {}};
            case head_kind::need_more:
                need_bytes_ = std::max(s->prefix_needed, buf_.size() + 1);
                continue;
            case head_kind::podpipe_member:
                if (auto r = start_body(s->info); !r)
                    return fail(r.error());
                buf_.reserve(info_.member_bytes);
                continue;
            }
            continue;
        }
        case state::body: {
            take(need_bytes_ - buf_.size());
            if (buf_.size() < need_bytes_)
                return item{};
            state_ = state::boundary;
            emitted_from_buf_ = true;
            ++members_;
            return item{head_kind::podpipe_member, {buf_.data(), buf_.size()}, info_};
        }
        }
    }
}

} // namespace podpipe::gzip
