#include "hooks/commands/pod_wait.hpp"

#include "kube/client.hpp"
#include "kube/wait.hpp"

#include <algorithm>
#include <array>

namespace podpipe::hook {
namespace {

constexpr std::array<std::string_view, 4> terminal_waits = {
    "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError"};

std::string waiting_text(const kube::container_status& c, bool init) {
    const auto& w = *c.state.waiting;
    std::string s = std::string(init ? "init container " : "container ") + c.name + " waiting: " + w.reason;
    if (!w.message.empty())
        s += " (" + w.message + ")";
    return s;
}

std::string terminated_text(const kube::container_status& c, bool init) {
    const auto& t = *c.state.terminated;
    std::string s = std::string(init ? "init container " : "container ") + c.name + " exited with code " +
                    std::to_string(t.exit_code);
    if (!t.reason.empty())
        s += " (" + t.reason + (t.message.empty() ? "" : ": " + t.message) + ")";
    return s;
}

} // namespace

pod_outlook assess_pod(const kube::pod& p) {
    using v = pod_outlook::verdict;
    const auto& st = p.status;
    if (st.phase == "Running")
        return {v::running, {}};
    for (const auto& c : st.init_container_statuses)
        if (c.state.terminated && c.state.terminated->exit_code != 0)
            return {v::failed, terminated_text(c, true)};
    if (st.phase == "Failed" || st.phase == "Succeeded") {
        std::string why = "the pod ended with phase " + st.phase;
        if (!st.reason.empty() || !st.message.empty())
            why += " (" + st.reason + (st.message.empty() ? "" : ": " + st.message) + ")";
        for (const auto& c : st.container_statuses)
            if (c.state.terminated)
                why += "; " + terminated_text(c, false);
        return {v::failed, why};
    }
    for (int pass = 0; pass < 2; ++pass) {
        const bool init = pass == 0;
        for (const auto& c : init ? st.init_container_statuses : st.container_statuses) {
            if (!c.state.waiting)
                continue;
            const auto& reason = c.state.waiting->reason;
            if (std::find(terminal_waits.begin(), terminal_waits.end(), reason) != terminal_waits.end())
                return {v::failed, waiting_text(c, init)};
        }
    }
    // Still pending: the most telling obstacle, for progress lines and the timeout message.
    for (const auto& cond : st.conditions)
        if (cond.type == "PodScheduled" && cond.status == "False")
            return {v::waiting, "not scheduled: " + cond.reason + (cond.message.empty() ? "" : ": " + cond.message)};
    if (!st.message.empty())
        return {v::waiting, st.message};
    for (const auto& cond : st.conditions)
        if (cond.status == "False" && !cond.reason.empty() && cond.reason != "ContainersNotReady" &&
            cond.reason != "ContainersNotInitialized" && cond.reason != "PodCompleted")
            return {v::waiting, cond.type + " " + cond.reason + (cond.message.empty() ? "" : ": " + cond.message)};
    for (int pass = 0; pass < 2; ++pass) {
        const bool init = pass == 0;
        for (const auto& c : init ? st.init_container_statuses : st.container_statuses)
            if (c.state.waiting && c.state.waiting->reason != "PodInitializing" &&
                c.state.waiting->reason != "ContainerCreating")
                return {v::waiting, waiting_text(c, init)};
    }
    return {v::waiting, st.phase.empty() ? std::string() : "phase " + st.phase};
}

result<kube::pod, kube::api_error> wait_for_running(kube::api_client& client, std::string_view ns,
                                                   std::string_view name, const wait_options& opt) {
    std::string last_why;
    std::string failed_why;
    kube::pod_wait_options w;
    w.deadline = std::chrono::steady_clock::now() + opt.timeout;
    w.stop = opt.stop;
    w.first_poll = opt.first_poll;
    w.max_poll = opt.max_poll;
    auto p = kube::wait_for_pod(
        client, ns, name,
        [&](const kube::pod& p) {
            const pod_outlook o = assess_pod(p);
            if (o.state == pod_outlook::verdict::running)
                return kube::pod_check::done;
            if (o.state == pod_outlook::verdict::failed) {
                failed_why = o.why;
                return kube::pod_check::fail;
            }
            if (o.why != last_why && !o.why.empty() && opt.on_change)
                opt.on_change(o.why);
            if (!o.why.empty())
                last_why = o.why;
            return kube::pod_check::wait;
        },
        w);
    if (p)
        return p;
    const std::string pod_text = "pod " + std::string(name);
    kube::api_error e(p.error().code, "");
    if (!failed_why.empty()) {
        e.message = pod_text + " failed to come online: " + failed_why;
    } else if (p.error().is(kube::errc::cancelled)) {
        e.message = pod_text + ": interrupted while waiting for it to run";
    } else if (p.error().is(kube::errc::timeout) &&
               std::chrono::steady_clock::now() >= w.deadline) {
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(opt.timeout).count();
        e.message = pod_text + " did not reach Running within " + std::to_string(s) + " s" +
                    (last_why.empty() ? std::string() : ": " + last_why);
    } else {
        e.message = pod_text + " failed to come online: " + p.error().what();
    }
    return fail(std::move(e));
}

} // namespace podpipe::hook
