// The step spool's status and pgid files as `podpipe run` reads them (remote/step_spool.hpp):
// exactly what its supervisor writes; anything else, which anyone in the pod may have written,
// is an error or nothing.
#include "remote/step_spool.hpp"

#include <gtest/gtest.h>

namespace podpipe::remote::step {
namespace {

TEST(spool_format, statuses_the_supervisor_writes_are_read_back) {
    auto e = parse_status("exit 0\n", "s");
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->signalled);
    EXPECT_EQ(e->exit_code(), 0);
    auto x = parse_status("exit 255\n", "s");
    ASSERT_TRUE(x);
    EXPECT_EQ(x->exit_code(), 255);
    auto k = parse_status("signal 9\n", "s");
    ASSERT_TRUE(k);
    EXPECT_TRUE(k->signalled);
    EXPECT_EQ(k->exit_code(), 137);
}

TEST(spool_format, anything_else_is_not_a_status) {
    // "signal \n" was read as signal 0 before the spool's fuzz target found it.
    for (const char* text : {"", "exit", "exit \n", "signal \n", "exit 1", "exit 256\n",
                             "exit -1\n", "exit 1 \n", "exit 1\n\n", "exit 1234\n", "EXIT 1\n",
                             "quit 1\n", "exit 0x1\n"}) {
        auto st = parse_status(text, "spool/status");
        ASSERT_FALSE(st) << "'" << text << "'";
        EXPECT_EQ(st.error().rfind("spool/status: not a step status", 0), 0u) << st.error();
    }
}

TEST(spool_format, process_groups_are_decimals_above_one) {
    EXPECT_EQ(parse_pid("4242\n"), 4242);
    EXPECT_EQ(parse_pid("4242"), 4242);
    for (const char* text : {"", "\n", "0\n", "1\n", "-5\n", "12a\n", " 12\n", "99999999999\n"})
        EXPECT_FALSE(parse_pid(text)) << "'" << text << "'";
}

} // namespace
} // namespace podpipe::remote::step
