#include "engine/pipeline/entry_convert.hpp"

namespace podpipe::pipeline::detail {

tar::entry to_tar_entry(const io::file_entry& e) {
    tar::entry t;
    t.path = e.path;
    switch (e.kind) {
    case io::file_kind::regular:
        t.type = tar::entry_type::regular;
        t.size = e.size;
        break;
    case io::file_kind::directory:
        t.type = tar::entry_type::directory;
        break;
    case io::file_kind::symlink:
        t.type = tar::entry_type::symlink;
        break;
    case io::file_kind::hardlink:
        t.type = tar::entry_type::hardlink;
        break;
    case io::file_kind::other:
        t.type = tar::entry_type::fifo; // never sent: the reader skips these
        break;
    }
    t.mode = e.mode & 07777;
    t.mtime_sec = e.mtime_sec;
    t.uid = e.uid;
    t.gid = e.gid;
    t.link_target = e.link_target;
    return t;
}

io::file_entry to_file_entry(const tar::entry& t) {
    io::file_entry e;
    e.path = t.path;
    switch (t.type) {
    case tar::entry_type::regular:
        e.kind = io::file_kind::regular;
        break;
    case tar::entry_type::directory:
        e.kind = io::file_kind::directory;
        break;
    case tar::entry_type::symlink:
        e.kind = io::file_kind::symlink;
        break;
    case tar::entry_type::hardlink:
        e.kind = io::file_kind::hardlink;
        break;
    default:
        e.kind = io::file_kind::other;
        break;
    }
    e.size = e.kind == io::file_kind::regular ? t.size : 0;
    e.mode = t.mode & 07777;
    e.mtime_sec = t.mtime_sec;
    e.uid = t.uid;
    e.gid = t.gid;
    e.link_target = t.link_target;
    return e;
}

} // namespace podpipe::pipeline::detail
