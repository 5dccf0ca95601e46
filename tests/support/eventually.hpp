// Condition waits for tests: poll until something another thread, process or the simulated
// cluster brings about holds, up to a deadline. Never a fixed sleep: a fixed sleep is too
// short on a loaded machine and wastes time on an idle one. (Real time stays only where a test
// measures time.)
#pragma once

#include <chrono>
#include <functional>

namespace podpipe::testing {

/// Calls `cond` until it returns true (then true) or `limit` passed (then false, after one
/// last call). Polls every `every`.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds(20),
                std::chrono::milliseconds every = std::chrono::milliseconds(20));

/// As eventually(), returning the last value `probe` produced: e.g. the phase a pod reached.
template <class Probe, class Pred>
auto eventually_value(Probe&& probe, Pred&& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    decltype(probe()) last{};
    eventually([&] { return done(last = probe()); }, limit);
    return last;
}

} // namespace podpipe::testing
