#include "engine/common/json_writer.hpp"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace podpipe {
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

TEST(JsonWriter, UnsignedAndDoubleValues) {
    json_writer w;
    w.begin_object();
    w.field("max", std::numeric_limits<std::uint64_t>::max());
    w.field("threads", 4u);
    w.field("seconds", 2.0738971234, 6);
    w.field("cpu", 0.5, 3);
    w.field("rate", 1234567.6, 0);
    w.field("short", 0.1);
    w.field("nan", std::numeric_limits<double>::quiet_NaN());
    w.field("inf", std::numeric_limits<double>::infinity(), 3);
    w.field("huge", 1e300, 6); // too long in fixed form: the shortest form instead
    w.end_object();
    EXPECT_EQ(w.take(), R"({"max":18446744073709551615,"threads":4,"seconds":2.073897,)"
                        R"("cpu":0.500,"rate":1234568,"short":0.1,"nan":null,"inf":null,)"
                        R"("huge":1e+300})");
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

} // namespace
} // namespace podpipe
