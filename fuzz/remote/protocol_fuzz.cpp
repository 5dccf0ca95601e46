// libFuzzer target for the pod-side protocol's parsers (remote/protocol_parse.hpp): hello,
// report, failure, resume (line and word) and the final line of recv run on every input (seeds are real messages).
// Invariants checked: nothing crashes or throws; what a parser accepts, its writer writes as
// one line that the parser accepts again with the same content; a report's problem lines are
// printable and bounded (they are shown to people).
#include "remote/protocol_parse.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace podpipe::remote::protocol;

namespace {

void check_one_line(const std::string& line) {
    if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1)
        std::abort();
}

void check_report(const report& r) {
    const auto& p = r.stats.problems;
    if (p.lines.size() > podpipe::tar::sender_problems::max_lines || p.count < p.lines.size())
        std::abort();
    for (const auto& line : p.lines)
        if (line != podpipe::tar::printable_line(line))
            std::abort();
    const std::string again = report_line(r);
    check_one_line(again);
    auto back = parse_report(again);
    if (!back || back->direction != r.direction || back->stats.files != r.stats.files ||
        back->stats.manifest != r.stats.manifest || back->stats.problems.lines != p.lines ||
        back->stats.stages.size() != r.stats.stages.size())
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (auto h = parse_hello(in)) {
        const std::string again = hello_line(*h);
        check_one_line(again);
        auto back = parse_hello(again);
        if (!back || !(*back == *h))
            std::abort();
    }
    if (auto r = parse_report(in))
        check_report(*r);
    if (auto f = parse_failure(in)) {
        const std::string again = failure_line(*f);
        check_one_line(again);
        auto back = parse_failure(again);
        if (!back || back->exit_code != f->exit_code || f->exit_code < 1 || f->exit_code > 255)
            std::abort();
    }
    if (auto r = parse_resume(in)) {
        const std::string again = resume_line(*r);
        check_one_line(again);
        auto back = parse_resume(again);
        if (!back || !(*back == *r) || back->why_not != podpipe::tar::printable_line(r->why_not))
            std::abort();
    }
    if (auto w = parse_resume_word(in)) {
        if (resume_word(*w) != in || w->offset == 0)
            std::abort();
    }
    if (auto fin = parse_final(in); fin && std::holds_alternative<report>(*fin))
        check_report(std::get<report>(*fin));
    return 0;
}
