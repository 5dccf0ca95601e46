// sender_problems: what a sender could not send as it is on its disk (a file it could not
// read, one that vanished, changed, shrank or grew while being read, a directory it could not
// list), counted, with the first lines kept for people. One type from where they are found to
// where they are shown: engine/io's tree reader fills it (read_stats::problems), engine/tar
// carries it in-band before the manifest (tar::sender_problems, writer.hpp: append_problems),
// the receiver's transfer_stats report it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace podpipe {

struct sender_problems {
    std::uint64_t count = 0;        ///< all problems, also those not listed
    std::vector<std::string> lines; ///< the first max_lines, one line each for people
    static constexpr std::size_t max_lines = 100;
    /// A line longer than this is cut where it is shown or carried (tar::printable_line).
    static constexpr std::size_t max_line_bytes = 512;

    /// Counts one more problem and keeps its line while fewer than max_lines are kept.
    void add(std::string line) {
        ++count;
        if (lines.size() < max_lines)
            lines.push_back(std::move(line));
    }
};

} // namespace podpipe
