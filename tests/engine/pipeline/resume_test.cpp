// A receive cut off and continued (issue 21, "transfers resume"): the receiver's ledger, the
// sender skipping what the receiver has, the check that the source did not change. Real trees
// on disk; the link is a byte buffer cut at every gzip member boundary and inside members.
#include "engine/pipeline/ledger.hpp"
#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"

#include "engine/gzip/member_splitter.hpp"
#include "engine/pipeline/errors.hpp"
#include "tests/support/tree_fixture.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace podpipe::pipeline {
namespace {

using testing::diff_trees;
using testing::make_awkward_tree;
using testing::temp_dir;
using testing::write_file;

class memory_sink final : public byte_sink {
public:
    std::vector<std::byte> bytes;
    result<void> write(std::span<const std::byte> b) override {
        bytes.insert(bytes.end(), b.begin(), b.end());
        return {};
    }
};

// The link: the first `cut` bytes of `bytes`, then the connection resets (or, with cut ==
// size, a clean end).
class cut_source final : public byte_source {
public:
    cut_source(std::span<const std::byte> bytes, std::size_t cut) : bytes_(bytes), cut_(cut) {}
    result<std::size_t> read(std::span<std::byte> into) override {
        if (at_ == cut_) {
            if (cut_ == bytes_.size())
                return std::size_t{0};
            return fail(std::make_error_code(std::errc::connection_reset));
        }
        const std::size_t n = std::min({into.size(), cut_ - at_, std::size_t{7000}});
        std::memcpy(into.data(), bytes_.data() + at_, n);
        at_ += n;
        return n;
    }

private:
    std::span<const std::byte> bytes_;
    std::size_t cut_;
    std::size_t at_ = 0;
};

send_options small_chunks() {
    send_options o;
    o.chunk_bytes = min_chunk_bytes; // many members: many places to cut
    o.threads = 2;
    o.memory_bytes = 32 << 20;
    return o;
}

recv_options resumable(bool resume, resume_offer* offer = nullptr, std::string* why = nullptr) {
    recv_options o;
    o.require_manifest = true;
    o.threads = 2;
    o.memory_bytes = 32 << 20;
    resume_options r;
    r.id = "t-1";
    r.resume = resume;
    r.commit_every = 1; // a point after every member where the parser allows one
    r.lock_wait = std::chrono::milliseconds(200);
    r.on_offer = [offer, why](const resume_offer& o, const std::string& w) {
        if (offer != nullptr)
            *offer = o;
        if (why != nullptr)
            *why = w;
    };
    o.resumable = r;
    return o;
}

std::vector<std::byte> send_all(const fs::path& src, const send_options& o) {
    memory_sink sink;
    auto r = send_tree(src.string(), sink, o);
    EXPECT_TRUE(r) << (r ? "" : r.error().what());
    return sink.bytes;
}

// Offsets where one gzip member ends and the next begins.
std::vector<std::size_t> member_boundaries(std::span<const std::byte> stream) {
    std::vector<std::size_t> out;
    gzip::member_splitter splitter(8 << 20);
    std::span<const std::byte> in = stream;
    for (;;) {
        auto item = splitter.next(in);
        if (!item || item->kind != gzip::head_kind::podpipe_member)
            break;
        out.push_back(stream.size() - in.size());
        if (item->info.uncompressed_bytes == 0)
            break;
    }
    return out;
}

bool ledger_left(const fs::path& dest) {
    for (const auto& e : fs::directory_iterator(dest))
        if (e.path().filename().string().starts_with(".podpipe-resume-"))
            return true;
    return false;
}

class resume : public ::testing::Test {
protected:
    void SetUp() override {
        make_awkward_tree(src_.path() / "t", 60);
        // Files across many members, one cut inside at every boundary.
        std::string big(300 * 1024 + 17, '\0');
        for (std::size_t i = 0; i < big.size(); ++i)
            big[i] = static_cast<char>((i * 2654435761u) >> 13);
        write_file(src_.path() / "t/big/one", big);
        write_file(src_.path() / "t/big/two", big.substr(1000));
        src = src_.path() / "t";
    }

    // A first attempt cut at `cut`, then a resumed one; the tree must be the source's.
    void cut_then_resume(std::size_t cut, const std::vector<std::byte>& stream,
                         std::uint64_t* resumed_at) {
        temp_dir dest;
        const fs::path out = dest.path() / "out";
        cut_source first(stream, cut);
        auto r1 = recv_tree(first, out.string(), resumable(false));
        ASSERT_FALSE(r1) << "cut at " << cut;

        resume_offer offer;
        std::string why;
        cut_source none(stream, 0); // on_offer runs before the first read
        memory_sink resent;
        auto opt = resumable(true, &offer, &why);
        send_options so = small_chunks();
        // The receiver's offer comes first; the sender starts there.
        opt.resumable->on_offer = [&](const resume_offer& o, const std::string& w) {
            offer = o;
            why = w;
            so.resume_from = o;
            auto s = send_tree(src.string(), resent, so);
            ASSERT_TRUE(s) << s.error().what();
            EXPECT_EQ(s->resumed_at, o.offset);
            EXPECT_EQ(s->manifest.entries, full_manifest.entries);
            EXPECT_EQ(s->manifest, full_manifest);
        };
        struct deferred final : public byte_source {
            memory_sink& s;
            std::size_t at = 0;
            explicit deferred(memory_sink& sink) : s(sink) {}
            result<std::size_t> read(std::span<std::byte> into) override {
                const std::size_t n = std::min(into.size(), s.bytes.size() - at);
                std::memcpy(into.data(), s.bytes.data() + at, n);
                at += n;
                return n;
            }
        } second(resent);
        auto r2 = recv_tree(second, out.string(), opt);
        ASSERT_TRUE(r2) << "cut at " << cut << ": " << r2.error().what();
        EXPECT_TRUE(r2->manifest_checked);
        EXPECT_EQ(r2->manifest, full_manifest) << cut;
        EXPECT_EQ(r2->resumed_at, offer.offset);
        if (offer.offset > 0) {
            EXPECT_LT(resent.bytes.size(), stream.size()) << "a resume sends less than all";
        }
        *resumed_at = offer.offset;
        EXPECT_EQ(diff_trees(src, out), std::vector<std::string>{}) << "cut at " << cut;
        EXPECT_FALSE(ledger_left(out)) << cut;
    }

    temp_dir src_;
    fs::path src;
    tar::manifest full_manifest;
};

// At every member boundary and in the middle of every member: the second receive continues
// from the first one's last committed point, and the tree is exactly the source's.
TEST_F(resume, continues_after_a_cut_at_every_member_boundary) {
    const auto stream = send_all(src, small_chunks());
    {
        temp_dir whole;
        cut_source all(stream, stream.size());
        auto r = recv_tree(all, (whole.path() / "o").string(), resumable(false));
        ASSERT_TRUE(r) << r.error().what();
        full_manifest = r->manifest;
        EXPECT_GT(r->resume_commits, 5u);
        EXPECT_FALSE(ledger_left(whole.path() / "o"));
    }
    const auto bounds = member_boundaries(stream);
    ASSERT_GT(bounds.size(), 20u);
    std::size_t resumed = 0;
    std::uint64_t last = 0;
    for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
        // Every boundary; inside every fourth member (each cut costs a third of a second).
        std::vector<std::size_t> cuts{bounds[i]};
        if (i % 4 == 1)
            cuts.push_back((bounds[i] + bounds[i + 1]) / 2);
        for (std::size_t cut : cuts) {
            std::uint64_t at = 0;
            cut_then_resume(cut, stream, &at);
            if (HasFatalFailure())
                return;
            if (at > 0)
                ++resumed;
            // The members that came before the cut are parsed and committed before the
            // receive fails: a later cut never resumes earlier.
            EXPECT_GE(at, last) << "cut at " << cut;
            last = at;
        }
    }
    // Nearly every cut after the first few members resumed rather than started over.
    EXPECT_GT(resumed, bounds.size() * 9 / 10);
}

// The source changed before the resume point: the sender refuses (nothing sent), and a fresh
// attempt under the same id copies the new tree whole.
TEST_F(resume, a_source_changed_before_the_point_is_refused_then_restarted) {
    const auto stream = send_all(src, small_chunks());
    temp_dir dest;
    const fs::path out = dest.path() / "out";
    cut_source first(stream, stream.size() * 3 / 4);
    ASSERT_FALSE(recv_tree(first, out.string(), resumable(false)));

    resume_offer offer;
    {
        cut_source nothing(stream, 0);
        auto opt = resumable(true, &offer);
        (void)recv_tree(nothing, out.string(), opt); // only to learn the offer; it fails
    }
    ASSERT_GT(offer.offset, 0u);
    // Change a file that comes early in the stream (the root's first entries).
    write_file(src / "big/one", "changed");
    send_options so = small_chunks();
    so.resume_from = offer;
    memory_sink refused;
    auto s = send_tree(src.string(), refused, so);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::resume_mismatch) << s.error().what();
    EXPECT_NE(s.error().detail.find("at stream offset " + std::to_string(offer.offset)),
              std::string::npos)
        << s.error().detail;
    EXPECT_TRUE(refused.bytes.empty()) << "nothing may be sent before the check";

    // Start over (resume = false) under the same id.
    const auto fresh = send_all(src, small_chunks());
    cut_source all(fresh, fresh.size());
    auto r = recv_tree(all, out.string(), resumable(false));
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(diff_trees(src, out), std::vector<std::string>{});
    EXPECT_FALSE(ledger_left(out));
}

// A ledger that cannot be trusted (damaged) is not used: the offer is 0, with the reason.
TEST_F(resume, a_damaged_ledger_starts_over_and_says_why) {
    const auto stream = send_all(src, small_chunks());
    temp_dir dest;
    const fs::path out = dest.path() / "out";
    cut_source first(stream, stream.size() / 2);
    ASSERT_FALSE(recv_tree(first, out.string(), resumable(false)));
    const fs::path record = out / ".podpipe-resume-t-1";
    ASSERT_TRUE(fs::exists(record));
    {
        std::fstream f(record, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(30);
        f.put('\x7f');
    }
    resume_offer offer{1, {}};
    std::string why;
    cut_source all(stream, stream.size());
    auto r = recv_tree(all, out.string(), resumable(true, &offer, &why));
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(offer.offset, 0u);
    EXPECT_EQ(why, "the receiver has no resume point for this transfer");
    EXPECT_EQ(r->resumed_at, 0u);
    EXPECT_EQ(diff_trees(src, out), std::vector<std::string>{});
}

// A receive that is cut before its first commit leaves nothing behind (no ledger, no
// unfinished file), as a receive that is not resumable.
TEST_F(resume, a_cut_before_the_first_commit_leaves_no_ledger) {
    const auto stream = send_all(src, small_chunks());
    temp_dir dest;
    const fs::path out = dest.path() / "out";
    cut_source first(stream, 20);
    auto r = recv_tree(first, out.string(), resumable(false));
    ASSERT_FALSE(r);
    EXPECT_FALSE(ledger_left(out));
}

// Two receivers of one transfer never run at once: the second waits for the ledger's lock,
// then gives up with a clear error.
TEST_F(resume, a_second_receiver_waits_for_the_first) {
    temp_dir dest;
    auto held = ledger_files::open(dest.path().string(), "t-1", std::chrono::milliseconds(0));
    ASSERT_TRUE(held);
    const auto stream = send_all(src, small_chunks());
    cut_source all(stream, stream.size());
    auto r = recv_tree(all, dest.path().string(), resumable(true));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, std::errc::timed_out);
    EXPECT_NE(r.error().detail.find("still holds its resume ledger"), std::string::npos)
        << r.error().detail;
}

// A root where the ledger cannot be kept (here its name is taken by a directory; a read-only
// root directory or a full disk likewise): the receive goes on without resume and says why.
TEST_F(resume, a_root_without_room_for_a_ledger_receives_without_one) {
    const auto stream = send_all(src, small_chunks());
    temp_dir dest;
    const fs::path out = dest.path() / "out";
    fs::create_directories(out / ".podpipe-resume-t-1.dirs");
    resume_offer offer{1, {}};
    std::string why;
    cut_source all(stream, stream.size());
    auto r = recv_tree(all, out.string(), resumable(false, &offer, &why));
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_TRUE(r->manifest_checked);
    EXPECT_EQ(r->resume_commits, 0u);
    EXPECT_EQ(offer.offset, 0u);
    EXPECT_NE(why.find("cannot keep a resume ledger"), std::string::npos) << why;
    fs::remove(out / ".podpipe-resume-t-1.dirs");
    EXPECT_EQ(diff_trees(src, out), std::vector<std::string>{});
}

TEST(ledger, records_round_trip_and_anything_else_is_refused) {
    ledger_record rec;
    rec.point.offset = 4096 + 100;
    rec.point.in_content = true;
    rec.point.current.path = "a/b";
    rec.point.current.size = 1000;
    rec.point.current.mode = 0640;
    rec.point.content_done = 100;
    rec.manifest_state = "state";
    rec.before = {3, 1234, 0xfeedu};
    rec.dirs_bytes = 77;
    const std::string bytes = encode_ledger(rec);
    EXPECT_EQ(decode_ledger(bytes), rec);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string bad = bytes;
        bad[i] = static_cast<char>(bad[i] ^ 0x20);
        EXPECT_FALSE(decode_ledger(bad)) << "a flipped byte at " << i;
        EXPECT_FALSE(decode_ledger(bytes.substr(0, i))) << "cut at " << i;
    }
    rec.point.in_content = false;
    rec.point.current = {};
    rec.point.content_done = 0;
    rec.point.offset = 4096;
    EXPECT_EQ(decode_ledger(encode_ledger(rec)), rec);
    rec.point.offset = 4097; // between entries is always on a block
    EXPECT_FALSE(decode_ledger(encode_ledger(rec)));

    io::file_entry d;
    d.path = "x/y";
    d.kind = io::file_kind::directory;
    d.mode = 0750;
    d.mtime_sec = 1700000000;
    const std::string log = encode_dir_record(d) + encode_dir_record(d);
    auto dirs = decode_dir_log(log);
    ASSERT_TRUE(dirs);
    ASSERT_EQ(dirs->size(), 2u);
    EXPECT_EQ((*dirs)[1].path, "x/y");
    EXPECT_EQ((*dirs)[1].mode, 0750u);
    EXPECT_FALSE(decode_dir_log(log.substr(0, log.size() - 1)));
    EXPECT_TRUE(valid_transfer_id("a-Z_9"));
    EXPECT_FALSE(valid_transfer_id("../x"));
    EXPECT_FALSE(valid_transfer_id(""));
    EXPECT_FALSE(valid_transfer_id(std::string(65, 'a')));
}

} // namespace
} // namespace podpipe::pipeline
