#include "kube/base64.hpp"

#include <gtest/gtest.h>

#include <string>

namespace podpipe::kube {
namespace {

TEST(Base64, RoundTripAndErrors) {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        auto d = base64_decode(base64_encode(s));
        ASSERT_TRUE(d);
        EXPECT_EQ(*d, s);
    }
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(*base64_decode("Zm9v\nYmFy\n"), "foobar");
    EXPECT_EQ(*base64_decode("Zm8"), "fo");
    EXPECT_FALSE(base64_decode("Zm9v!"));
    EXPECT_FALSE(base64_decode("Z"));
    EXPECT_FALSE(base64_decode("Zm8=Zm8="));
}

} // namespace
} // namespace podpipe::kube
