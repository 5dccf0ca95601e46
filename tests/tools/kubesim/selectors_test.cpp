#include "tools/kubesim/selectors.hpp"

#include <gtest/gtest.h>

namespace podpipe::kubesim {
namespace {

TEST(kubesim_selectors, label_equality_and_sets) {
    std::map<std::string, std::string> labels{{"app", "web"}, {"tier", "front"}};
    auto match = [&](const char* s) {
        auto sel = parse_label_selector(s);
        EXPECT_TRUE(sel.has_value()) << s;
        return sel && matches_labels(*sel, labels);
    };
    EXPECT_TRUE(match(""));
    EXPECT_TRUE(match("app=web"));
    EXPECT_TRUE(match("app==web"));
    EXPECT_FALSE(match("app!=web"));
    EXPECT_TRUE(match("app in (db, web)"));
    EXPECT_FALSE(match("app notin (db,web)"));
    EXPECT_TRUE(match("tier,app=web"));
    EXPECT_FALSE(match("!tier"));
    EXPECT_TRUE(match("!missing"));
    EXPECT_FALSE(match("missing"));
    EXPECT_TRUE(match("missing!=x"));
}

TEST(kubesim_selectors, field_selectors) {
    auto sel = parse_field_selector("metadata.name=p1,status.phase!=Failed");
    ASSERT_TRUE(sel.has_value());
    auto field = [](const std::string& k) -> std::optional<std::string> {
        if (k == "metadata.name")
            return "p1";
        if (k == "status.phase")
            return "Running";
        return std::nullopt;
    };
    EXPECT_TRUE(matches_fields(*sel, field));
    auto unknown = parse_field_selector("spec.unknown=x");
    ASSERT_TRUE(unknown.has_value());
    EXPECT_FALSE(matches_fields(*unknown, field));
    EXPECT_FALSE(parse_field_selector("novalue").has_value());
    EXPECT_FALSE(parse_label_selector("app in (a").has_value());
}

} // namespace
} // namespace podpipe::kubesim
