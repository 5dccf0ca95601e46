// The receiver's ledger: what a resumable receive has committed, so that a later receive of the
// same transfer (after the connection dropped) continues where it stopped instead of starting
// over. Two files beside the tree, in its root, named after the transfer's id:
//
//   .podpipe-resume-<id>       one record, replaced by rename at each commit: the resume point
//                              (tar offset; between entries or inside a regular file at some
//                              content byte, with that entry), the manifest builder's state
//                              there, its peek() (what the sender compares), and how much of
//                              the directory log it covers; a checksum over all of it.
//   .podpipe-resume-<id>.dirs  the directories created so far, appended (their modes and
//                              mtimes are applied at the end, so a resumed receive must know
//                              them); also the lock a receiver holds while it runs.
//
// A record is trusted only whole: magic, version, checksum, every length within its bounds.
// Anything else reads as "no ledger" and the transfer starts over.
#pragma once

#include "engine/common/result.hpp"
#include "engine/common/unique_fd.hpp"
#include "engine/io/file_entry.hpp"
#include "engine/tar/manifest.hpp"
#include "engine/tar/parser.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::pipeline {

/// Where a resumed sender starts: the tar offset, and what the receiver's manifest says of the
/// stream before it (the sender's own must be the same, or the source changed).
struct resume_offer {
    std::uint64_t offset = 0; ///< 0: start over (no trusted ledger)
    tar::manifest before;     ///< manifest_builder::peek() at offset

    bool operator==(const resume_offer&) const = default;
};

struct ledger_record {
    tar::resume_point point;
    std::string manifest_state; ///< manifest_builder::save_state() at point
    tar::manifest before;       ///< manifest_builder::peek() at point
    std::uint64_t dirs_bytes = 0; ///< the directory log's bytes this record covers

    bool operator==(const ledger_record&) const = default;
};

/// A transfer id as a file name part: 1 to 64 of [0-9A-Za-z_-].
bool valid_transfer_id(std::string_view id);

std::string encode_ledger(const ledger_record& r);
/// nullopt unless `bytes` is exactly one record encode_ledger() wrote.
std::optional<ledger_record> decode_ledger(std::string_view bytes);

/// One directory entry of the log (path, mode, mtime, owner).
std::string encode_dir_record(const io::file_entry& dir);
/// The directories of a log's first `bytes` bytes; nullopt if they are not whole records.
std::optional<std::vector<io::file_entry>> decode_dir_log(std::string_view log);

/// What a resumed receive into `root` under `id` would offer, read without taking the lock or
/// creating anything: for a caller that must tell the sender before the receive starts (the
/// sender's command line carries it). nullopt when there is no record that can be trusted. The
/// receive itself decides again (resume_options::on_offer).
std::optional<resume_offer> peek_resume_offer(const std::string& root, std::string_view id);

/// The two files of one transfer's ledger in a receiver's root, locked while open.
class ledger_files {
public:
    /// Opens (creating) the lock/directory log and takes its lock, waiting up to `wait` for a
    /// receiver of the same id that is still running (an exec that dropped may leave it alive
    /// for a moment). Errors: the system's (timed_out when the lock stays held).
    static result<ledger_files> open(const std::string& root, std::string_view id,
                                     std::chrono::milliseconds wait);

    /// The committed record, if it is whole and its directory log is too (their bytes).
    std::optional<ledger_record> read_record() const;
    std::string read_dir_log(std::uint64_t bytes) const;

    /// Appends directory records (buffered by the caller between commits).
    result<void> append_dirs(std::string_view records);
    /// Replaces the record (write a temporary, rename): a receiver that dies at any point leaves
    /// the previous record or this one.
    result<void> commit(const ledger_record& r);
    /// Keeps the directory log's first `bytes` (what the record covers; a receiver that died
    /// may have appended more after its last commit).
    result<void> keep_dirs(std::uint64_t bytes);
    /// Forgets everything: the record removed, the directory log emptied.
    result<void> reset();
    /// Removes both files (the transfer is complete); the lock goes with the descriptor.
    void remove();
    std::uint64_t dir_log_bytes() const noexcept { return dirs_bytes_; }

private:
    ledger_files(unique_fd root, std::string record_name, std::string dirs_name, unique_fd dirs,
                 std::uint64_t dirs_bytes)
        : root_(std::move(root))
        , record_name_(std::move(record_name))
        , dirs_name_(std::move(dirs_name))
        , dirs_(std::move(dirs))
        , dirs_bytes_(dirs_bytes) {}

    unique_fd root_;
    std::string record_name_;
    std::string dirs_name_;
    unique_fd dirs_;
    std::uint64_t dirs_bytes_ = 0;
};

} // namespace podpipe::pipeline
