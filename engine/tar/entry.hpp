// tar::entry: one archive member's metadata, as the writer takes it and the parser reports it.
#pragma once

#include <cstdint>
#include <string>

namespace podpipe::tar {

/// The ustar typeflag. The parser may also report typeflags without a named enumerator (the raw
/// byte, e.g. a vendor extension): callers must treat any value they do not know as "skip".
enum class entry_type : char {
    regular = '0',         ///< also reported for '\0' (old tar) and '7' (contiguous file)
    hardlink = '1',
    symlink = '2',
    char_device = '3',
    block_device = '4',
    directory = '5',
    fifo = '6',
    gnu_dumpdir = 'D',     ///< GNU incremental directory listing (content = the listing)
    gnu_multivolume = 'M', ///< GNU continuation of a file from a previous volume
    gnu_volume_label = 'V' ///< GNU volume label (path = the label)
};

struct entry {
    /// Archive path: relative, '/'-separated, no leading "./", no trailing '/'. The archive root
    /// directory itself (GNU tar's "./") is reported as ".". The parser passes unsafe paths
    /// ("../x", "/etc/passwd") through unchanged: the extractor must check them.
    std::string path;
    entry_type type = entry_type::regular;
    std::uint32_t mode = 0;  ///< permission bits incl. suid/sgid/sticky (mask 07777)
    std::uint64_t size = 0;  ///< content bytes that follow (regular files; 0 for symlinks,
                             ///< directories, devices and fifos)
    std::int64_t mtime_sec = 0;
    std::uint32_t uid = 0, gid = 0;
    std::string uname, gname;
    /// Symlink target text (raw), or the archive path a hardlink points to (leading "./"
    /// stripped by the parser, like `path`).
    std::string link_target;

    bool operator==(const entry&) const = default;
};

} // namespace podpipe::tar
