#include "kube/base64.hpp"
#include "kube/json_writer.hpp"

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

TEST(JsonWriter, NestedDocument) {
    json_writer w;
    w.begin_object();
    w.field("a", 1);
    w.key("b");
    w.begin_array();
    w.value("x");
    w.value(true);
    w.null();
    w.begin_object();
    w.end_object();
    w.end_array();
    w.field("c", std::int64_t{-9007199254740993});
    w.end_object();
    EXPECT_EQ(w.take(), R"({"a":1,"b":["x",true,null,{}],"c":-9007199254740993})");
}

TEST(JsonWriter, Escaping) {
    std::string out;
    json_writer::append_escaped(out, std::string_view("q\"b\\n\n\t\r\b\f\x01\x1f\x7f/", 14));
    EXPECT_EQ(out, R"("q\"b\\n\n\t\r\b\f\u0001\u001f\u007f/")");
}

TEST(JsonWriter, Utf8KeptInvalidReplaced) {
    std::string out;
    json_writer::append_escaped(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT_EQ(out, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    out.clear();
    // lone continuation, truncated sequence, overlong '/', surrogate U+D800
    json_writer::append_escaped(out, "a\x80"
                                     "b\xe2\x82"
                                     "c\xc0\xaf"
                                     "d\xed\xa0\x80");
    EXPECT_EQ(out, R"("a\ufffdb\ufffd\ufffdc\ufffd\ufffdd\ufffd\ufffd\ufffd")");
}

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
