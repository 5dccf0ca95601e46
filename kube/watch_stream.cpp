#include "kube/watch_stream.hpp"

namespace podpipe::kube {

result<void, api_error> watch_decoder::deliver(std::string_view line, const event_sink& sink) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
        line.remove_prefix(1);
    if (line.empty())
        return {};
    auto ev = parse_watch_event(line);
    if (!ev)
        return fail(ev.error());
    return sink(std::move(*ev));
}

result<void, api_error> watch_decoder::feed(std::string_view chunk, const event_sink& sink) {
    while (!chunk.empty()) {
        const auto nl = chunk.find('\n');
        if (nl == std::string_view::npos) {
            if (partial_.size() + chunk.size() > max_line_)
                return fail(api_error(errc::bad_response, "watch: event line longer than " +
                                                               std::to_string(max_line_) +
                                                               " bytes"));
            partial_.append(chunk);
            return {};
        }
        const std::string_view head = chunk.substr(0, nl);
        chunk.remove_prefix(nl + 1);
        if (partial_.size() + head.size() > max_line_)
            return fail(api_error(errc::bad_response, "watch: event line longer than " +
                                                           std::to_string(max_line_) + " bytes"));
        if (partial_.empty()) {
            PODPIPE_TRY(deliver(head, sink));
        } else {
            partial_.append(head);
            std::string line = std::move(partial_);
            partial_.clear();
            PODPIPE_TRY(deliver(line, sink));
        }
    }
    return {};
}

result<void, api_error> watch_decoder::finish(const event_sink& sink) {
    std::string line = std::move(partial_);
    partial_.clear();
    return deliver(line, sink);
}

} // namespace podpipe::kube
