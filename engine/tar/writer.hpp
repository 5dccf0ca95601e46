// tar writer: encodes entries as POSIX.1-2001 pax/ustar header blocks into a caller's buffer.
// The caller streams each regular file's content itself, followed by padding_for(size) zero
// bytes, and ends the archive with append_end(). No I/O, no threads, no shared state: every
// function is safe to call concurrently on different buffers.
//
// Format (POSIX.1-2017 `pax`, "ustar Interchange Format" and "pax Extended Header"):
//  * One 512-byte ustar header per entry (magic "ustar\0", version "00", octal numeric fields,
//    checksum). Strings are raw bytes: a non-ASCII name that fits is written as is.
//  * A pax 'x' extended header precedes it only when a field does not fit ustar: path longer
//    than the 100/155 name/prefix split allows, link target > 100 bytes, uname/gname > 31 bytes,
//    size >= 8 GiB, uid/gid > 07777777, mtime < 0 or >= 8^11. The ustar field then holds a
//    truncated string, or the number in GNU base-256, for readers that ignore pax.
//  * Directories are written with a trailing '/' in the name (as GNU tar does); symlinks,
//    hardlinks, directories, devices and fifos carry size 0. Device numbers are written as 0.
#pragma once

#include "engine/common/result.hpp"
#include "engine/tar/entry.hpp"
#include "engine/tar/limits.hpp"
#include "engine/tar/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace podpipe::tar {

/// Appends the header block(s) for e to out (a multiple of 512 bytes). On error out is
/// unchanged. Errors:
///  * errc::invalid_entry: empty path; a NUL byte in path, link_target, uname or gname; a
///    symlink/hardlink without link_target; size != 0 for anything but a regular file; a type
///    the writer does not produce (only the seven POSIX types 0..6 are written).
///  * errc::too_large: the pax extended header would exceed max_extended_header_bytes
///    (1 MiB; limits.hpp), which no real path comes near (PATH_MAX is 4096).
result<void> append_header(const entry& e, std::vector<std::byte>& out);

/// Zero bytes needed after `content_bytes` of content to reach a 512 boundary (0..511).
std::size_t padding_for(std::uint64_t content_bytes) noexcept;

/// Appends the end of the archive: a pax global header (typeflag 'g', name "pax_global_header")
/// whose only record is "comment=<format_manifest_comment(m)>", then two 512-byte zero blocks.
/// POSIX says readers ignore `comment`, so GNU tar and busybox tar extract and print nothing
/// for it; parser reports it through parser_handler::on_manifest.
void append_end(const manifest& m, std::vector<std::byte>& out);

/// Appends a pax global header whose only record is "comment=<format_problems_comment(p)>"
/// (ignored silently by other readers, as the manifest's); the parser reports it through
/// parser_handler::on_sender_problems. Written just before append_end() when p.count > 0.
void append_problems(const sender_problems& p, std::vector<std::byte>& out);

/// Appends `paths` as deletions (manifest.hpp: format_deletions_comment), in as many pax
/// global headers as needed to keep each under max_extended_header_bytes; nothing for an
/// empty list. Written first, before any entry, so the receiver deletes before it extracts
/// (an entry may replace a deleted path of another kind). The parser reports each header
/// through parser_handler::on_deletions; other readers ignore them.
void append_deletions(std::span<const std::string> paths, std::vector<std::byte>& out);

} // namespace podpipe::tar
