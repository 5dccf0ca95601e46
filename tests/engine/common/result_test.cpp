#include "engine/common/result.hpp"

#include "engine/common/error.hpp"

#include <string>

#include <gtest/gtest.h>

namespace podpipe {
namespace {

result<int> parse_digit(char c) {
    if (c < '0' || c > '9')
        return fail(std::make_error_code(std::errc::invalid_argument));
    return c - '0';
}

result<int> twice(char c) {
    auto d = parse_digit(c);
    if (!d)
        return fail(d.error());
    return *d * 2;
}

result<void> check_all(std::string_view s) {
    for (char c : s)
        PODPIPE_TRY(parse_digit(c));
    return {};
}

TEST(result, carries_value_or_error) {
    auto ok = twice('4');
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, 8);
    auto bad = twice('x');
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), std::errc::invalid_argument);
}

TEST(result, void_result_and_try_propagate) {
    EXPECT_TRUE(check_all("123"));
    auto r = check_all("12a3");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), std::errc::invalid_argument);
}

TEST(result, move_only_values) {
    result<std::unique_ptr<int>> r = std::make_unique<int>(7);
    ASSERT_TRUE(r);
    std::unique_ptr<int> p = std::move(r).value();
    EXPECT_EQ(*p, 7);
}

TEST(condition, errno_values_map_to_conditions) {
    EXPECT_EQ(errno_code(EPIPE), condition::peer_closed);
    EXPECT_EQ(errno_code(EAGAIN), condition::retryable);
    EXPECT_NE(errno_code(ENOENT), condition::retryable);
}

TEST(result_death, value_of_error_aborts) {
    result<int> r = fail(std::make_error_code(std::errc::io_error));
    EXPECT_DEATH((void)r.value(), "result::value");
}

} // namespace
} // namespace podpipe
