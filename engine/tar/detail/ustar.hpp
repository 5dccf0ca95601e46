// ustar header field offsets and sizes (POSIX.1-2017, pax, "ustar Interchange Format"), shared
// by writer.cpp and parser.cpp. Not part of the public API.
#pragma once

#include <cstddef>

namespace podpipe::tar::detail {

struct field {
    std::size_t offset;
    std::size_t size;
};

inline constexpr field f_name{0, 100};
inline constexpr field f_mode{100, 8};
inline constexpr field f_uid{108, 8};
inline constexpr field f_gid{116, 8};
inline constexpr field f_size{124, 12};
inline constexpr field f_mtime{136, 12};
inline constexpr field f_chksum{148, 8};
inline constexpr field f_typeflag{156, 1};
inline constexpr field f_linkname{157, 100};
inline constexpr field f_magic{257, 6};   // "ustar\0" (POSIX) or "ustar " + version " \0" (GNU)
inline constexpr field f_version{263, 2}; // "00" (POSIX)
inline constexpr field f_uname{265, 32};
inline constexpr field f_gname{297, 32};
inline constexpr field f_devmajor{329, 8};
inline constexpr field f_devminor{337, 8};
inline constexpr field f_prefix{345, 155};

} // namespace podpipe::tar::detail
