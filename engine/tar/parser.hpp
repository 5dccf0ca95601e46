// tar push parser: turns any split of a tar byte stream into entry callbacks. Reads ustar, old
// GNU ("ustar  \0") and v7 headers, pax 'x'/'g' extended headers, GNU 'L'/'K' long names and GNU
// base-256 numbers. Content is handed to the handler as spans of the caller's own buffer: no copy.
//
// Memory is bounded: one 512-byte header buffer plus extended-header payloads of at most
// max_extended_header_bytes (limits.hpp); nothing is ever allocated from an unchecked size field.
//
// Errors are sticky: once feed() or finish() fails, every later call returns the same error and
// last_error_detail() says where and why. Not thread-safe; one parser per stream.
#pragma once

#include "engine/common/result.hpp"
#include "engine/tar/entry.hpp"
#include "engine/tar/error.hpp"
#include "engine/tar/limits.hpp"
#include "engine/tar/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace podpipe::tar {

/// Receives a parser's output, synchronously from inside feed()/finish(). Returning an error
/// from any callback stops the parser: feed() returns that error (and keeps returning it).
class parser_handler {
public:
    virtual ~parser_handler() = default;
    /// A header was parsed, with pax / GNU long-name overrides applied. `e` is valid only
    /// during the call. Every entry type is reported, including ones an extractor skips
    /// (devices, fifos, GNU 'D'/'M'/'V', unknown typeflags: see entry_type).
    virtual result<void> on_entry(const entry& e) = 0;
    /// Content of the current entry, in order, e.size bytes in total over all calls, in pieces
    /// of any size (never empty). The span points into the buffer given to feed() and is valid
    /// only during the call. Sent for every entry with e.size > 0: regular files, and hardlinks,
    /// GNU 'D'/'M' and unknown types that carry data (the caller drops what it does not want).
    /// Symlinks, directories, devices and fifos never have content (POSIX: no data records).
    virtual result<void> on_data(std::span<const std::byte> bytes) = 0;
    /// After the entry's last on_data (right after on_entry for entries without content).
    virtual result<void> on_entry_end() = 0;
    /// A pax global header carrying a podpipe manifest comment (writer.hpp: append_end) was
    /// seen. Other global records are ignored.
    virtual result<void> on_manifest(const manifest& m) = 0;
    /// A pax global header carrying a sender's problem report (writer.hpp: append_problems).
    virtual result<void> on_sender_problems(const sender_problems&) { return {}; }
    /// A pax global header carrying deletions (writer.hpp: append_deletions). The default
    /// ignores them, as other tar readers do.
    virtual result<void> on_deletions(const deletions&) { return {}; }
};

/// A place in the stream where a later parser can take over (a resumed receive): between two
/// entries, or inside a regular file's content. Elsewhere (inside a header, an extended
/// header, padding, after a first zero block) there is none.
struct resume_point {
    std::uint64_t offset = 0;      ///< stream bytes before this point
    bool in_content = false;       ///< inside `current`'s content
    entry current;                 ///< with in_content: the regular file (overrides applied)
    std::uint64_t content_done = 0; ///< with in_content: its bytes before this point

    bool operator==(const resume_point&) const = default;
};

class parser {
public:
    /// h must outlive the parser.
    explicit parser(parser_handler& h);
    parser(parser&&) noexcept;
    parser& operator=(parser&&) noexcept;
    parser(const parser&) = delete;
    parser& operator=(const parser&) = delete;
    ~parser();

    /// Consumes all of `bytes` (any split of the stream works, down to one byte per call).
    /// Bytes after the end-of-archive marker are ignored. Errors: errc::bad_checksum,
    /// bad_header, too_large, unsupported (GNU sparse 'S' or pax GNU.sparse.*), bad_pax, or the
    /// handler's own error.
    result<void> feed(std::span<const std::byte> bytes);

    /// The input ended. errc::truncated if it ended inside a header, an extended header or its
    /// padding, file content or its padding, or after an extended header with no entry for it.
    /// A stream ending on a block boundary after a complete entry (no zero blocks), after one
    /// zero block, or an empty stream, is accepted (as GNU tar does). Afterwards ended() is
    /// true on success.
    result<void> finish();

    /// End of archive seen: two zero blocks, or (after finish()) one zero block then EOF.
    bool ended() const noexcept;

    /// The archive's end-of-archive marker (two zero blocks) was read. Unlike ended(), not
    /// set by finish() accepting an archive that simply stops on a block boundary: a stream
    /// format that always writes the marker (podpipe's) checks this to tell a cut stream.
    bool end_marker_seen() const noexcept;

    /// Bytes of the stream processed so far, up to and including the end-of-archive marker
    /// (bytes ignored after it are not counted).
    std::uint64_t bytes_consumed() const noexcept;

    /// Where the parser stands, when a later parser can take over from here; nullopt inside a
    /// header, an extended header or padding, after a zero block, at the end, after an error.
    std::optional<resume_point> where() const;

    /// Takes over at `p` (a point where() returned, the stream's bytes from p.offset on
    /// follow). Only on a parser that has not been fed. With p.in_content, the next bytes are
    /// p.current's content from p.content_done on (the handler had on_entry for it earlier, in
    /// another process: it gets on_data and on_entry_end only). Errors: bad_header when `p`
    /// is not a point where() can return (content beyond the size, not a regular file).
    result<void> resume_at(const resume_point& p);

    /// A user-facing explanation of the last error, e.g. "header at offset 1536 (after entry
    /// 'a/b'): checksum mismatch (stored 012345, computed 012346)". Empty if no error.
    std::string last_error_detail() const;

private:
    class impl;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::tar
