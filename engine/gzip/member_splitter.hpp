// member_splitter: cuts a byte stream of podpipe members into whole members without
// inflating, using the member_bytes of each member's subfield, so a receiver can read its
// socket/fd in large blocks of any size and hand members to parallel member_decompressors.
//
// Fed any split of the stream (1 byte at a time, random blocks, a whole file), it yields each
// member once, whole. A member lying entirely inside the caller's block is returned as a view
// into that block (no copy); one that straddles blocks is assembled in an internal buffer.
//
// The stream must start at a member boundary. Zero bytes after at least one member are
// accepted as padding until the end (as gzip and stream_inflater do); anything else after
// padding is errc::bad_header. When the bytes at a member boundary are not a podpipe member
// (foreign gzip, or not gzip at all) the splitter stops there and says so, so the caller can
// switch to serial mode:
//
//   member_splitter splitter(max_member);
//   std::span<const std::byte> in = block;             // advanced by next()/feed()
//   auto k = splitter.feed(in, [&](std::span<const std::byte> m, const head_info& h) {
//       copy m to a pool block (or decompress it now) -- the view dies when the call returns
//   });
//   if (!k) fail;                                      // bad header, member too large
//   if (*k == head_kind::foreign_gzip) {                // serial from here on:
//       inflater.inflate(splitter.pending()); inflater.inflate(in); ...then later blocks
//   }                                                   // not_gzip: same, to the tar reader
//   ... at end of input: splitter.finish() (truncated if a member is incomplete).
//
// Thread safety: none; one instance per stream. Not copyable.
#pragma once

#include "engine/common/result.hpp"
#include "engine/gzip/head.hpp"

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace podpipe::gzip {

class member_splitter {
public:
    /// Default limit on member_bytes: 64 MiB, 64x the default chunk; raise it if senders use
    /// bigger chunks. A larger member fails with errc::too_large.
    static constexpr std::size_t default_max_member_bytes = std::size_t{64} << 20;

    /// max_member_bytes (clamped to gzip::max_member_bytes) bounds the internal buffer.
    explicit member_splitter(std::size_t max_member_bytes = default_max_member_bytes);
    member_splitter(const member_splitter&) = delete;
    member_splitter& operator=(const member_splitter&) = delete;
    member_splitter(member_splitter&&) noexcept = default;
    member_splitter& operator=(member_splitter&&) noexcept = default;

    struct item {
        /// podpipe_member: `member` is one whole member, `info` its lengths.
        /// need_more: all of `in` was consumed (buffered or padding); call with more input.
        /// foreign_gzip / not_gzip: stopped at a member boundary; `in` was not advanced past
        /// it, and pending() holds earlier-consumed bytes that precede `in`.
        head_kind kind = head_kind::need_more;
        std::span<const std::byte> member;
        head_info info;
    };

    /// Advances `in` past the bytes it uses and returns the next event. `item::member` is
    /// valid until the next call to next()/feed()/reset() and, when it is a view into the
    /// caller's block, as long as that block. Once stopped (foreign_gzip / not_gzip) it keeps
    /// returning that kind without consuming. Errors (sticky): see inspect_head, and
    /// errc::too_large for a member above the limit, errc::bad_header for non-zero bytes
    /// after zero padding.
    result<item> next(std::span<const std::byte>& in);

    /// Calls on_member(std::span<const std::byte> member, const head_info&) for each complete
    /// member in `in`, advancing `in`. Returns need_more once all of `in` is used, or
    /// foreign_gzip / not_gzip when stopped (see next()). If on_member returns bool, false
    /// stops after that member and feed() returns head_kind::podpipe_member; call again.
    template <class OnMember>
    result<head_kind> feed(std::span<const std::byte>& in, OnMember&& on_member) {
        for (;;) {
            auto r = next(in);
            if (!r)
                return fail(r.error());
            if (r->kind != head_kind::podpipe_member)
                return r->kind;
            if constexpr (std::is_same_v<std::invoke_result_t<OnMember&, std::span<const std::byte>,
                                                              const head_info&>,
                                         bool>) {
                if (!on_member(r->member, std::as_const(r->info)))
                    return head_kind::podpipe_member;
            } else {
                on_member(r->member, std::as_const(r->info));
            }
        }
    }

    /// Bytes consumed from earlier input but not yet part of an emitted member: a partial
    /// member (need_more), or the start of the non-podpipe data once stopped.
    std::span<const std::byte> pending() const noexcept;

    /// The input is over. Ok if it ended at a member boundary after at least one member
    /// (padding allowed), or once stopped (the serial consumer judges the rest).
    /// errc::truncated inside a member or if no byte was ever seen; the sticky error otherwise.
    result<void> finish() const;

    /// Members emitted so far.
    std::size_t members() const noexcept { return members_; }

    /// Back to the start of a new stream (keeps the buffer's capacity).
    void reset() noexcept;

private:
    enum class state { boundary, header, body, padding, stopped, failed };

    std::vector<std::byte> buf_;
    std::size_t max_member_bytes_;
    std::size_t need_bytes_ = 0; ///< header: bytes wanted before re-inspecting; body: member size
    head_info info_;
    state state_ = state::boundary;
    head_kind stopped_kind_ = head_kind::need_more;
    std::error_code error_;
    std::size_t members_ = 0;
    bool emitted_from_buf_ = false;
};

} // namespace podpipe::gzip
