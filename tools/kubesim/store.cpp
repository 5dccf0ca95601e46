#include "tools/kubesim/store.hpp"

#include <algorithm>

#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {

std::optional<watch_event> watcher::next(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lk(mu_);
    cv_.wait_until(lk, deadline, [&] { return done_ || !queue_.empty(); });
    if (queue_.empty())
        return std::nullopt;
    watch_event ev = std::move(queue_.front());
    queue_.pop_front();
    return ev;
}

bool watcher::done() const {
    std::lock_guard lk(mu_);
    return done_ && queue_.empty();
}

static void set_rv(json::object& obj, std::uint64_t rv) {
    obj["metadata"].as_object()["resourceVersion"] = std::to_string(rv);
}

std::optional<json::object> object_store::create(const std::string& resource, const std::string& ns,
                                                 json::object obj, const std::string& uid) {
    std::lock_guard lk(mu_);
    auto& md = obj["metadata"];
    if (!md.is_object())
        md = json::object{};
    std::string name = str_at(md.as_object(), "name");
    key k{resource, ns, name};
    if (objects_.count(k))
        return std::nullopt;
    auto& m = md.as_object();
    m["uid"] = uid.empty() ? random_uuid() : uid;
    m["creationTimestamp"] = now_rfc3339();
    if (!ns.empty())
        m["namespace"] = ns;
    ++rv_;
    set_rv(obj, rv_);
    objects_[k] = obj;
    emit({"ADDED", resource, ns, rv_, obj});
    return obj;
}

std::optional<json::object> object_store::get(const std::string& resource, const std::string& ns,
                                              const std::string& name) const {
    std::lock_guard lk(mu_);
    auto it = objects_.find(key{resource, ns, name});
    if (it == objects_.end())
        return std::nullopt;
    return it->second;
}

std::vector<json::object> object_store::list(const std::string& resource, const std::string& ns,
                                             std::uint64_t& rv) const {
    std::lock_guard lk(mu_);
    std::vector<json::object> out;
    for (const auto& [k, v] : objects_) {
        if (std::get<0>(k) == resource && (ns.empty() || std::get<1>(k) == ns))
            out.push_back(v);
    }
    rv = rv_;
    return out;
}

std::optional<json::object> object_store::update(const std::string& resource, const std::string& ns,
                                                 const std::string& name, const std::string& uid,
                                                 const std::function<void(json::object&)>& mutate) {
    std::lock_guard lk(mu_);
    auto it = objects_.find(key{resource, ns, name});
    if (it == objects_.end())
        return std::nullopt;
    if (!uid.empty() && str_at(it->second["metadata"].as_object(), "uid") != uid)
        return std::nullopt;
    json::object before = it->second;
    mutate(it->second);
    ++rv_;
    set_rv(it->second, rv_);
    emit({"MODIFIED", resource, ns, rv_, it->second, std::move(before)});
    return it->second;
}

std::optional<json::object>
object_store::update_if(const std::string& resource, const std::string& ns,
                        const std::string& name, const std::function<bool(json::object&)>& mutate) {
    std::lock_guard lk(mu_);
    auto it = objects_.find(key{resource, ns, name});
    if (it == objects_.end())
        return std::nullopt;
    json::object next = it->second;
    if (!mutate(next))
        return std::nullopt;
    json::object before = std::move(it->second);
    it->second = std::move(next);
    ++rv_;
    set_rv(it->second, rv_);
    emit({"MODIFIED", resource, ns, rv_, it->second, std::move(before)});
    return it->second;
}

std::optional<json::object> object_store::remove(const std::string& resource, const std::string& ns,
                                                 const std::string& name, const std::string& uid) {
    std::lock_guard lk(mu_);
    auto it = objects_.find(key{resource, ns, name});
    if (it == objects_.end())
        return std::nullopt;
    if (!uid.empty() && str_at(it->second["metadata"].as_object(), "uid") != uid)
        return std::nullopt;
    json::object obj = std::move(it->second);
    objects_.erase(it);
    ++rv_;
    set_rv(obj, rv_);
    emit({"DELETED", resource, ns, rv_, obj});
    return obj;
}

void object_store::emit(watch_event ev) {
    for (auto& w : watchers_) {
        if (w->resource_ != ev.resource || (!w->ns_.empty() && w->ns_ != ev.ns))
            continue;
        std::lock_guard wl(w->mu_);
        if (w->done_)
            continue;
        if (w->queue_.size() >= watcher::max_queued) {
            w->done_ = true; // a slow watcher ends; the client re-lists
        } else {
            w->queue_.push_back(ev);
        }
        w->cv_.notify_all();
    }
    history_.push_back(std::move(ev));
    if (history_.size() > history_limit)
        history_.pop_front();
}

std::shared_ptr<watcher> object_store::watch(const std::string& resource, const std::string& ns,
                                             std::optional<std::uint64_t> from_rv, bool& expired,
                                             std::uint64_t* oldest_rv) {
    std::lock_guard lk(mu_);
    expired = false;
    auto w = std::make_shared<watcher>();
    w->resource_ = resource;
    w->ns_ = ns;
    w->done_ = shutdown_;
    if (!from_rv) {
        for (const auto& [k, v] : objects_) {
            if (std::get<0>(k) == resource && (ns.empty() || std::get<1>(k) == ns))
                w->queue_.push_back({"ADDED", resource, std::get<1>(k), rv_, v});
        }
    } else {
        // The watch cache's getAllEventsSinceLocked: a version older than the one before the
        // oldest event it holds (or than the list it started from) is expired.
        std::uint64_t oldest = history_.empty() ? rv_ : history_.front().rv;
        const std::uint64_t floor = std::max(oldest > 0 ? oldest - 1 : 0, history_floor_);
        if (*from_rv < floor && *from_rv < rv_) {
            expired = true;
            if (oldest_rv)
                *oldest_rv = floor;
            return w;
        }
        for (const auto& ev : history_) {
            if (ev.rv > *from_rv && ev.resource == resource && (ns.empty() || ev.ns == ns))
                w->queue_.push_back(ev);
        }
    }
    watchers_.push_back(w);
    return w;
}

void object_store::forget_history() {
    std::lock_guard lk(mu_);
    history_.clear();
    history_floor_ = rv_;
}

void object_store::unwatch(const std::shared_ptr<watcher>& w) {
    std::lock_guard lk(mu_);
    watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w), watchers_.end());
}

std::uint64_t object_store::current_rv() const {
    std::lock_guard lk(mu_);
    return rv_;
}

void object_store::shutdown() {
    std::lock_guard lk(mu_);
    shutdown_ = true;
    for (auto& w : watchers_) {
        std::lock_guard wl(w->mu_);
        w->done_ = true;
        w->cv_.notify_all();
    }
}

} // namespace podpipe::kubesim
