#include "kube/watch_stream.hpp"

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

const std::string stream =
    R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"1"}}})"
    "\n\r\n"
    R"({"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"2"},"status":{"phase":"Running"}}})"
    "\n"
    R"({"type":"DELETED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"3"}}})"
    "\n";

TEST(WatchDecoder, EveryChunkSplitGivesTheSameEvents) {
    for (std::size_t step = 1; step <= stream.size(); step += (step < 8 ? 1 : 37)) {
        watch_decoder d;
        std::vector<std::string> rvs;
        auto sink = [&](watch_event&& ev) -> result<void, api_error> {
            rvs.push_back(ev.object.metadata.resource_version);
            return {};
        };
        for (std::size_t i = 0; i < stream.size(); i += step)
            ASSERT_TRUE(d.feed(std::string_view(stream).substr(i, step), sink));
        ASSERT_TRUE(d.finish(sink));
        EXPECT_EQ(rvs, (std::vector<std::string>{"1", "2", "3"})) << step;
        EXPECT_EQ(d.buffered(), 0u);
    }
}

TEST(WatchDecoder, FinalLineWithoutNewlineAndCutStream) {
    int n = 0;
    auto sink = [&](watch_event&&) -> result<void, api_error> {
        ++n;
        return {};
    };
    watch_decoder d;
    ASSERT_TRUE(d.feed(R"({"type":"ADDED","object":{"metadata":{"name":"p"}}})", sink));
    EXPECT_EQ(n, 0);
    ASSERT_TRUE(d.finish(sink));
    EXPECT_EQ(n, 1);
    watch_decoder cut;
    ASSERT_TRUE(cut.feed(R"({"type":"ADDED","object":{"metad)", sink));
    auto r = cut.finish(sink);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::bad_response));
}

TEST(WatchDecoder, BoundedAndSinkErrorsStop) {
    watch_decoder small(64);
    auto ok = [](watch_event&&) -> result<void, api_error> { return {}; };
    EXPECT_FALSE(small.feed(std::string(65, ' '), ok));
    watch_decoder d;
    int n = 0;
    auto stop = [&](watch_event&&) -> result<void, api_error> {
        ++n;
        return fail(api_error(errc::gone, "stop"));
    };
    auto r = d.feed(stream, stop);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::gone));
    EXPECT_EQ(n, 1);
    EXPECT_FALSE(watch_decoder().feed("not json\n", ok));
}

} // namespace
} // namespace podpipe::kube
