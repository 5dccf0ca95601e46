// Drives the real `podpipe` binary through a shell, as a user or a script would.
#include "tools/podpipe/cli_util.hpp"

#include "tests/support/cgroup.hpp"
#include "tests/support/tree_fixture.hpp"

#include <filesystem>
#include <sched.h>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace fs = std::filesystem;

namespace podpipe {
namespace {

using testing::run_shell;
using testing::run_shell_capture;
using testing::shell_quote;
using testing::temp_dir;

const std::string exe = PODPIPE_EXE;

std::string q(const fs::path& p) { return shell_quote(p.string()); }

// --stats-json is for machines: it must parse, and carry the documented fields.
void expect_stats_json(const std::string& text, const char* what) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << what << ": " << text;
    for (const char* key : {"direction", "files", "wire_bytes", "seconds", "cpu_user_s", "max_rss_kib",
                            "manifest", "stages"})
        EXPECT_EQ(doc[key].error(), simdjson::SUCCESS) << what << " lacks " << key << ": " << text;
    simdjson::dom::array stages;
    ASSERT_EQ(doc["stages"].get_array().get(stages), simdjson::SUCCESS) << text;
    EXPECT_GT(stages.size(), 1u);
}

TEST(podpipe_cli, help_documents_commands_and_exit_codes) {
    std::string out;
    ASSERT_EQ(run_shell_capture(exe + " --help", out), 0);
    EXPECT_NE(out.find("pack"), std::string::npos);
    EXPECT_NE(out.find("unpack"), std::string::npos);
    EXPECT_NE(out.find("Exit codes"), std::string::npos);
    ASSERT_EQ(run_shell_capture(exe + " pack --help", out), 0);
    EXPECT_NE(out.find("--level"), std::string::npos);
    EXPECT_NE(out.find("--chunk-size"), std::string::npos);
}

TEST(podpipe_cli, pipe_round_trip_with_stats_and_progress) {
    temp_dir tmp;
    testing::make_awkward_tree(tmp / "src", 100);
    std::string out;
    const int rc = run_shell_capture(exe + " pack " + q(tmp / "src") + " --progress --stats-json " +
                                         q(tmp / "send.json") + " | " + exe + " unpack " +
                                         q(tmp / "dst") + " --require-manifest --stats-json " +
                                         q(tmp / "recv.json"),
                                     out);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("packed"), std::string::npos) << out;
    EXPECT_NE(out.find("manifest verified"), std::string::npos) << out;
    EXPECT_EQ(testing::diff_trees(tmp / "src", tmp / "dst"), std::vector<std::string>{});
    std::string json;
    ASSERT_EQ(run_shell_capture("cat " + q(tmp / "send.json"), json), 0);
    EXPECT_NE(json.find("\"name\":\"compress\""), std::string::npos) << json;
    expect_stats_json(json, "send");
    ASSERT_EQ(run_shell_capture("cat " + q(tmp / "recv.json"), json), 0);
    EXPECT_NE(json.find("\"checked\":true"), std::string::npos) << json;
    expect_stats_json(json, "recv");
}

TEST(podpipe_cli, exit_codes_say_what_went_wrong) {
    temp_dir tmp;
    testing::write_file(tmp / "src/a.txt", std::string(200000, 'a'));
    std::string out;
    // 2: usage.
    EXPECT_EQ(run_shell_capture(exe + " pack " + q(tmp / "src") + " --level 42 -o /dev/null", out),
              cli::exit_usage);
    EXPECT_EQ(run_shell_capture(exe + " pack /does/not/exist -o /dev/null", out), cli::exit_usage);
    // 3: unsafe entry.
    testing::write_file(tmp / "b/payload", "x");
    ASSERT_EQ(run_shell("tar -C " + q(tmp / "b") + " --transform='s,^,../,' -czf " +
                        q(tmp / "evil.tgz") + " payload"),
              0);
    EXPECT_EQ(run_shell_capture(exe + " unpack " + q(tmp / "dst1") + " -i " + q(tmp / "evil.tgz"),
                                out),
              cli::exit_unsafe)
        << out;
    EXPECT_NE(out.find("payload"), std::string::npos) << "error should name the entry: " << out;
    EXPECT_FALSE(fs::exists(tmp / "payload"));
    // 4: truncated stream.
    ASSERT_EQ(run_shell(exe + " pack " + q(tmp / "src") + " -o " + q(tmp / "s.tgz")), 0);
    ASSERT_EQ(run_shell("head -c 100 " + q(tmp / "s.tgz") + " > " + q(tmp / "cut.tgz")), 0);
    EXPECT_EQ(run_shell_capture(exe + " unpack " + q(tmp / "dst2") + " -i " + q(tmp / "cut.tgz"),
                                out),
              cli::exit_bad_input)
        << out;
}

// A file the sender cannot read (run as nobody; root reads everything): the stream says so
// in-band, and neither pack nor unpack calls the copy good unless told to accept it.
// The in-pod protocol's ends (remote/protocol.hpp): `hello` is one JSON line; a failing
// `recv --report` prints a failure line on stdout where the report would have been.
TEST(podpipe_cli, hello_and_recv_failure_lines) {
    temp_dir tmp;
    std::string out;
    ASSERT_EQ(run_shell_capture(exe + " hello", out), 0) << out;
    EXPECT_TRUE(out.starts_with("{\"message\":\"hello\",\"protocol\":1,")) << out;
    EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
    EXPECT_NE(out.find("\"recv-acks\""), std::string::npos) << out;
    // (stdout only: the capture takes stderr too)
    EXPECT_EQ(run_shell_capture("(echo garbage | " + exe + " recv --report " + q(tmp / "d") +
                                    " 2>/dev/null)",
                                out),
              cli::exit_bad_input);
    EXPECT_TRUE(out.starts_with("{\"message\":\"failure\",\"protocol\":1,")) << out;
    EXPECT_NE(out.find("\"ok\":false,\"exit_code\":4,\"error\":\"recv failed: "),
              std::string::npos)
        << out;
    // Without --report nothing goes to stdout.
    EXPECT_EQ(run_shell_capture("(echo garbage | " + exe + " recv " + q(tmp / "e") +
                                    " 2>/dev/null)",
                                out),
              cli::exit_bad_input);
    EXPECT_EQ(out, "");
}

TEST(podpipe_cli, files_the_sender_could_not_read_fail_the_copy_unless_allowed) {
    temp_dir tmp;
    testing::write_file(tmp / "src/ok.txt", "fine\n");
    testing::write_file(tmp / "src/secret", "hidden\n");
    ASSERT_EQ(run_shell("chmod 755 " + q(tmp.path()) + " " + q(tmp / "src") + " && chmod 000 " +
                        q(tmp / "src/secret") + " && mkdir -m 777 " + q(tmp / "out")),
              0);
    const std::string as_nobody = "setpriv --reuid 65534 --regid 65534 --clear-groups ";
    std::string out;
    EXPECT_EQ(run_shell_capture(as_nobody + exe + " pack " + q(tmp / "src") + " -o " +
                                    q(tmp / "out/s.tgz"),
                                out),
              cli::exit_failure)
        << out;
    EXPECT_NE(out.find("cannot read 'secret'"), std::string::npos) << out;
    EXPECT_NE(out.find("1 entry was not sent as on the sender's disk"), std::string::npos) << out;
    EXPECT_NE(out.find("NOT verified"), std::string::npos) << out;
    ASSERT_EQ(run_shell_capture(as_nobody + exe + " pack " + q(tmp / "src") + " -o " +
                                    q(tmp / "out/s.tgz") + " --allow-incomplete",
                                out),
              0)
        << out;

    // The receiver learns it from the stream, lists it, and fails unless told otherwise.
    EXPECT_EQ(run_shell_capture(exe + " unpack " + q(tmp / "dst") + " -i " + q(tmp / "out/s.tgz"),
                                out),
              cli::exit_failure)
        << out;
    EXPECT_NE(out.find("  cannot read 'secret'"), std::string::npos) << out;
    EXPECT_NE(out.find("NOT verified"), std::string::npos) << out;
    EXPECT_EQ(out.find("manifest verified"), std::string::npos) << out;
    ASSERT_EQ(run_shell_capture("cat " + q(tmp / "dst/ok.txt"), out), 0);
    EXPECT_EQ(out, "fine\n");
    ASSERT_EQ(run_shell_capture(exe + " unpack " + q(tmp / "dst2") + " -i " +
                                    q(tmp / "out/s.tgz") + " --allow-incomplete",
                                out),
              0)
        << out;
    EXPECT_NE(out.find("  cannot read 'secret'"), std::string::npos) << out;
    // Plain tar reads the report as a comment, silently.
    ASSERT_EQ(run_shell_capture("tar tzf " + q(tmp / "out/s.tgz") + " 2>&1", out), 0);
    EXPECT_EQ(out.find("Ignoring"), std::string::npos) << out;
    EXPECT_EQ(out.find("warning"), std::string::npos) << out;
}

// The compress stage's thread count of `podpipe pack --stats-json` run by `prefix`.
std::int64_t compress_threads(const std::string& prefix, const fs::path& src) {
    std::string out;
    if (run_shell_capture(prefix + exe + " pack " + q(src) + " -o /dev/null --stats-json -",
                          out) != 0)
        return -1;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    const auto brace = out.find('{');
    if (brace == std::string::npos || parser.parse(out.substr(brace)).get(doc) != simdjson::SUCCESS)
        return -2;
    for (auto stage : doc["stages"]) {
        std::string_view name;
        std::int64_t threads = 0;
        if (stage["name"].get(name) == simdjson::SUCCESS && name == "compress" &&
            stage["threads"].get(threads) == simdjson::SUCCESS)
            return threads;
    }
    return -3;
}

// Threads follow the cgroup CPU quota: in a 1-CPU cgroup on a machine with more cores, pack
// compresses on one thread; outside it, on every core of its affinity.
TEST(podpipe_cli, a_cpu_quota_sets_the_default_thread_count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    const int cores = CPU_COUNT(&set);
    if (cores < 2)
        GTEST_SKIP() << "one CPU: a quota of one changes nothing to observe";
    std::string why;
    auto group = testing::cpu_quota_cgroup::create(1.0, &why);
    if (!group)
        GTEST_SKIP() << why;
    temp_dir tmp;
    testing::make_awkward_tree(tmp / "src", 20);
    EXPECT_EQ(compress_threads("", tmp / "src"), cores);
    EXPECT_EQ(compress_threads("echo $$ > " + group->procs_file() + " && exec ", tmp / "src"), 1);
    // An explicit --threads still wins over the quota.
    std::string out;
    ASSERT_EQ(run_shell_capture("echo $$ > " + group->procs_file() + " && exec " + exe +
                                    " pack " + q(tmp / "src") +
                                    " -o /dev/null --threads 3 --stats-json -",
                                out),
              0)
        << out;
    EXPECT_NE(out.find("\"name\":\"compress\",\"threads\":3"), std::string::npos) << out;
}

TEST(podpipe_cli, parse_size_units) {
    EXPECT_EQ(cli::parse_size("1M"), 1u << 20);
    EXPECT_EQ(cli::parse_size("256K"), 256u << 10);
    EXPECT_EQ(cli::parse_size("2GiB"), 2ull << 30);
    EXPECT_EQ(cli::parse_size("123"), 123u);
    EXPECT_EQ(cli::parse_size("1X"), std::nullopt);
    EXPECT_EQ(cli::parse_size(""), std::nullopt);
    EXPECT_EQ(cli::parse_size("99999999999999999999G"), std::nullopt);
}

} // namespace
} // namespace podpipe
