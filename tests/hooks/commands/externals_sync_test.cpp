// The externals copy of volume mode (sync_externals): a local send_tree -> pipe -> recv_tree
// with the sender on a thread of its own.
#include "hooks/commands/volume_mode.hpp"

#include "tests/support/tree_fixture.hpp"

#include <string>

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

using podpipe::testing::temp_dir;

// When the sender fails, the error carries the sender's own reason, not whatever the
// receiving thread last saw (the reason once lived in a thread_local of the failing thread).
TEST(sync_externals, a_failed_sender_says_its_own_reason) {
    temp_dir tmp;
    podpipe::testing::write_file(tmp / "src/bin/tool", "x");
    // 20 MiB in all: the sender's half cannot hold its chunks and says so before it starts.
    auto r = sync_externals((tmp / "src").string(), (tmp / "dst").string(), 1, 20u << 20);
    ASSERT_FALSE(r);
    const std::string what = r.error().what();
    EXPECT_NE(what.find("reading"), std::string::npos) << what;
    EXPECT_NE(what.find("memory budget too small"), std::string::npos) << what;
}

// And a copy that works leaves the marker that makes the next one a no-op.
TEST(sync_externals, copies_once_then_skips) {
    temp_dir tmp;
    podpipe::testing::write_file(tmp / "src/bin/tool", "x");
    auto first = sync_externals((tmp / "src").string(), (tmp / "dst").string(), 1, 64u << 20);
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_TRUE(first->copied);
    auto again = sync_externals((tmp / "src").string(), (tmp / "dst").string(), 1, 64u << 20);
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_FALSE(again->copied);
}

} // namespace
} // namespace podpipe::hook
