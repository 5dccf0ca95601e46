// The two directions between the file system's view of an entry (io::file_entry) and the
// archive's (tar::entry), kept side by side so that what send writes is what recv reads.
#pragma once

#include "engine/io/file_entry.hpp"
#include "engine/tar/entry.hpp"

namespace podpipe::pipeline::detail {

/// For the sender: size only for regular files (tar carries no content for the others).
tar::entry to_tar_entry(const io::file_entry& e);

/// For the receiver: types the writer does not create (devices, fifos, GNU extensions) become
/// file_kind::other, which the writer skips with a warning.
io::file_entry to_file_entry(const tar::entry& t);

} // namespace podpipe::pipeline::detail
