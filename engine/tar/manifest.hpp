// The transfer manifest: entry count, content byte count and an order-dependent XXH3-64 digest
// of everything the archive carries that matters for a faithful copy. The sender computes it
// while writing and puts it at the end of the archive (writer.hpp: append_end); the receiver
// recomputes it while parsing and compares.
#pragma once

#include "engine/common/sender_problems.hpp"
#include "engine/tar/entry.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct XXH3_state_s;

namespace podpipe::tar {

struct manifest {
    std::uint64_t entries = 0;
    std::uint64_t content_bytes = 0;
    std::uint64_t digest = 0;
    bool operator==(const manifest&) const = default;
};

/// Feeds a logical stream "entry, its content, entry, its content, ..." into one XXH3-64 state.
///
/// What is hashed per entry: path (a single leading "./" and, for directories, trailing '/'
/// removed; "" becomes "."), type, mode & 07777, size, mtime_sec, link_target (for hardlinks
/// with the leading "./" removed) and then the content bytes, followed by the number of
/// content bytes actually fed. uid/gid/uname/gname are NOT hashed (a receiver running as
/// another user legitimately changes them). The encoding is length-prefixed, so no two
/// different streams share an input to the hash.
///
/// The digest does not depend on how content is split across add_content() calls.
/// Not thread-safe; use one builder per stream. Move-only.
class manifest_builder {
public:
    manifest_builder();
    manifest_builder(manifest_builder&&) noexcept;
    manifest_builder& operator=(manifest_builder&&) noexcept;
    manifest_builder(const manifest_builder&) = delete;
    manifest_builder& operator=(const manifest_builder&) = delete;
    ~manifest_builder();

    /// Starts a new entry (ends the previous one).
    void add_entry(const entry& e);
    /// A path the stream asks the receiver to delete (append_deletions), in stream order: it
    /// changes the digest, not the entry count, so a receiver that ignored the deletions
    /// fails the manifest check. Not between an entry and its content.
    void add_deletion(std::string_view path);
    /// Content of the current entry, in order, any split. Bytes before the first add_entry()
    /// are hashed too (as content of an implicit empty entry) but are not a valid use.
    void add_content(std::span<const std::byte> bytes);
    /// The manifest of everything fed so far. Call once, at the end; the builder must not be
    /// fed afterwards (it may be reused only after reset()).
    manifest finish();
    /// Forgets everything fed so far.
    void reset();

    /// What finish() would return if the stream ended here, without ending it (the current
    /// entry stays open; the digest covers what was fed, the current entry's content count not
    /// yet). Two builders fed the same prefix peek the same: a resumed sender compares its
    /// own at the resume point with the receiver's.
    manifest peek() const;
    /// Everything fed so far as opaque bytes (about 300), for a later process to continue
    /// the same stream (a resumed receive keeps them in its ledger).
    std::string save_state() const;
    /// Continues from save_state()'s bytes. False, and the builder unchanged, when they are
    /// not a state this build of the hash can continue (another version, corrupt, wrong size).
    bool restore_state(std::string_view saved);

private:
    struct state_deleter {
        void operator()(XXH3_state_s* s) const noexcept;
    };
    void end_entry();

    std::unique_ptr<XXH3_state_s, state_deleter> state_;
    std::uint64_t entries_ = 0;
    std::uint64_t content_bytes_ = 0;
    std::uint64_t current_content_ = 0;
    std::string scratch_; // reused encoding buffer for an entry's metadata
};

/// The comment text append_end() writes: "podpipe-manifest v1 entries=N bytes=B digest=<16 hex>"
/// (N, B decimal; digest 16 lowercase hex digits).
std::string format_manifest_comment(const manifest& m);

/// Parses the comment text written by format_manifest_comment(); nullopt if it is not exactly
/// that form (another tool's comment, a different version, trailing bytes, overflow).
std::optional<manifest> parse_manifest_comment(std::string_view comment);

/// What a sender could not send as it is on its disk (engine/common/sender_problems.hpp, filled
/// by the tree reader): the manifest covers what was sent, so this is how a receiver learns the
/// tree is not the sender's. Carried in-band before the manifest (writer.hpp: append_problems).
using podpipe::sender_problems;

/// The comment text append_problems() writes: "podpipe-problems v1 count=N" then, for each
/// line, '\n' and the line (control bytes replaced by '?', cut at max_line_bytes).
std::string format_problems_comment(const sender_problems& p);

/// Parses format_problems_comment()'s text; nullopt if it is not that form. Lines are cleaned
/// again (a hostile sender may write anything): no control bytes, at most max_lines of at most
/// max_line_bytes, and count is at least the number of lines.
std::optional<sender_problems> parse_problems_comment(std::string_view comment);

/// `line` fit for a terminal and a JSON string: control bytes, DEL and bytes that are not
/// valid UTF-8 as '?', at most max_line_bytes bytes.
std::string printable_line(std::string_view line);

/// Makes a report from any source (a stream, a remote receiver's JSON report) safe to show
/// and consistent: at most max_lines lines, each printable_line(), count at least their number.
void clean_problems(sender_problems& p);

/// The lines for people: each as "  <line>" (printable_line), then "  ... and N more" when
/// count exceeds them, joined by '\n' (no trailing newline; empty when there are no lines).
std::string problem_list(const sender_problems& p);

/// Paths (relative to the receiver's root) the receiver deletes before it writes the entries
/// that follow; carried in pax global headers (writer.hpp: append_deletions), which other tar
/// readers ignore. The receiver refuses unsafe paths (io::tree_writer::remove).
struct deletions {
    std::vector<std::string> paths;
};

/// The comment text of one deletions header: "podpipe-deletions v1 count=N" then, per path,
/// '\n' and the path with '\\' as "\\\\" and '\n' as "\\n".
std::string format_deletions_comment(std::span<const std::string> paths);

/// Parses format_deletions_comment()'s text; nullopt if it is not that form (a count that
/// differs from the paths, a bad escape, an empty path).
std::optional<deletions> parse_deletions_comment(std::string_view comment);

} // namespace podpipe::tar
