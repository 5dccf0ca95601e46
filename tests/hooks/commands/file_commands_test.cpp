#include "hooks/commands/file_commands.hpp"
#include "tests/support/tree_fixture.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;

std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// Whether one of `warnings` names `name` and says `what`.
bool warned(const std::vector<std::string>& warnings, const std::string& name,
            const std::string& what) {
    for (const auto& w : warnings)
        if (w.find("'" + name + "'") != std::string::npos && w.find(what) != std::string::npos)
            return true;
    return false;
}

// A stage with one of each kind a step can leave at its file commands, and the runner's
// directory with its own (empty) files for this step.
class file_commands_test : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directories(stage_);
        fs::create_directories(runner_);
        for (const char* n :
             {"set_output_g", "set_env_g", "step_summary_g", "add_path_g", "save_state_g"})
            write_file(runner_ / n, "");
        write_file(secret_, "stolen=SECRET\n");
    }

    temp_dir tmp_;
    fs::path stage_ = tmp_ / "stage";
    fs::path runner_ = tmp_ / "runner";
    fs::path secret_ = tmp_ / "secret";
};

TEST(file_command_variable, names_the_runners_variables) {
    EXPECT_EQ(file_command_variable("set_output_0d3f"), "GITHUB_OUTPUT");
    EXPECT_EQ(file_command_variable("set_env_0d3f"), "GITHUB_ENV");
    EXPECT_EQ(file_command_variable("add_path_0d3f"), "GITHUB_PATH");
    EXPECT_EQ(file_command_variable("save_state_0d3f"), "GITHUB_STATE");
    EXPECT_EQ(file_command_variable("step_summary_0d3f"), "GITHUB_STEP_SUMMARY");
    EXPECT_EQ(file_command_variable("set_output_"), "");
    EXPECT_EQ(file_command_variable("notes.txt"), "");
}

TEST_F(file_commands_test, only_regular_files_with_one_name_reach_the_runner) {
    write_file(stage_ / "set_env_g", "A=1\n");
    ::chmod((stage_ / "set_env_g").c_str(), 0); // the runner must still read it
    fs::create_symlink(secret_, stage_ / "set_output_g");
    fs::create_directories(stage_ / "step_summary_g" / "sub");
    write_file(stage_ / "add_path_g", "/bin\n");
    fs::create_hard_link(stage_ / "add_path_g", stage_ / "save_state_g");
    ASSERT_EQ(::mkfifo((stage_ / "fifo").c_str(), 0644), 0);

    auto w = adopt_file_commands(stage_.string(), runner_.string());
    ASSERT_TRUE(w) << w.error().what();
    EXPECT_EQ(read(runner_ / "set_env_g"), "A=1\n");
    EXPECT_EQ(fs::status(runner_ / "set_env_g").permissions(), fs::perms(0644));
    for (const char* n : {"set_output_g", "step_summary_g", "add_path_g", "save_state_g"}) {
        EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(runner_ / n))) << n;
        EXPECT_EQ(read(runner_ / n), "") << n; // the runner's own file, untouched
    }
    EXPECT_FALSE(fs::exists(fs::symlink_status(runner_ / "fifo")));
    EXPECT_EQ(w->size(), 5u);
    EXPECT_TRUE(warned(*w, "set_output_g", "symbolic link")) << ::testing::PrintToString(*w);
    EXPECT_TRUE(warned(*w, "set_output_g", "GITHUB_OUTPUT"));
    EXPECT_TRUE(warned(*w, "step_summary_g", "directory"));
    EXPECT_TRUE(warned(*w, "add_path_g", "hard link"));
    EXPECT_TRUE(warned(*w, "save_state_g", "hard link"));
    EXPECT_TRUE(warned(*w, "fifo", "fifo"));
}

TEST_F(file_commands_test, a_runner_directory_reached_through_a_symlink_is_refused) {
    fs::create_directory_symlink(runner_, tmp_ / "link");
    write_file(stage_ / "set_env_g", "A=1\n");
    EXPECT_FALSE(adopt_file_commands(stage_.string(), (tmp_ / "link").string()));
    EXPECT_EQ(read(runner_ / "set_env_g"), "");
}

// Volume mode: the pod wrote the runner's directory itself.
TEST_F(file_commands_test, on_a_shared_claim_irregular_entries_are_replaced_by_empty_files) {
    write_file(runner_ / "set_env_g", "A=1\n");
    fs::remove(runner_ / "set_output_g");
    fs::create_symlink(secret_, runner_ / "set_output_g");
    fs::remove(runner_ / "step_summary_g");
    fs::create_directories(runner_ / "step_summary_g" / "sub");
    fs::create_hard_link(secret_, runner_ / "pod-made");
    auto w = refuse_irregular_file_commands(runner_.string());
    EXPECT_EQ(read(runner_ / "set_env_g"), "A=1\n");
    for (const char* n : {"set_output_g", "step_summary_g"}) {
        EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(runner_ / n))) << n;
        EXPECT_EQ(read(runner_ / n), "") << n;
    }
    EXPECT_FALSE(fs::exists(fs::symlink_status(runner_ / "pod-made")));
    EXPECT_EQ(read(secret_), "stolen=SECRET\n");
    EXPECT_EQ(w.size(), 3u) << ::testing::PrintToString(w);
    EXPECT_TRUE(warned(w, "set_output_g", "symbolic link"));
    EXPECT_TRUE(warned(w, "step_summary_g", "directory"));
    EXPECT_TRUE(warned(w, "pod-made", "hard link"));

    // The directory itself replaced by a symlink to a runner-side directory.
    const fs::path elsewhere = tmp_ / "elsewhere";
    fs::create_directories(elsewhere);
    fs::remove_all(runner_);
    fs::create_directory_symlink(elsewhere, runner_);
    w = refuse_irregular_file_commands(runner_.string());
    ASSERT_EQ(w.size(), 1u);
    EXPECT_NE(w[0].find("symbolic link"), std::string::npos) << w[0];
    EXPECT_TRUE(fs::is_directory(fs::symlink_status(runner_)));
    EXPECT_TRUE(refuse_irregular_file_commands(runner_.string()).empty());
}

} // namespace
} // namespace podpipe::hook
