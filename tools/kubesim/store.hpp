// object_store: kubesim's etcd. Holds API objects as JSON keyed by (resource, namespace, name),
// assigns uid/resourceVersion/creationTimestamp, and fans changes out to watchers.
//
// Contract:
// - resourceVersion is one cluster-wide counter, incremented by every create/update/delete and
//   rendered as a decimal string in metadata.resourceVersion.
// - Stored objects carry kind/apiVersion; list() callers strip them for list items (spec §3.2).
// - Thread safety: every member function may be called from any thread.
// - A history of the last `history_limit` events lets a watch start from a given resourceVersion;
//   an older version gets expired=true (the caller answers 410 Expired). forget_history() (the
//   restart fault) drops it, as a restarted API server's watch cache starts empty.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <boost/json.hpp>

namespace podpipe::kubesim {

struct watch_event {
    std::string type; ///< ADDED, MODIFIED, DELETED
    std::string resource;
    std::string ns;
    std::uint64_t rv = 0;
    boost::json::object object; ///< full object with kind/apiVersion
    boost::json::object previous; ///< MODIFIED: the object before the change (else empty)
};

/// One watch subscription. Events are queued (at most `max_queued`, then the watch is marked
/// overflowed and ends) until next() takes them.
class watcher {
public:
    /// Waits until an event is queued, the deadline passes or the store shuts down.
    /// Returns nullopt on timeout/shutdown/overflow (then done() is true or the deadline passed).
    std::optional<watch_event> next(std::chrono::steady_clock::time_point deadline);
    bool done() const;

private:
    friend class object_store;
    static constexpr std::size_t max_queued = 20000;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<watch_event> queue_;
    std::string resource_;
    std::string ns_; ///< empty = all namespaces
    bool done_ = false;
};

class object_store {
public:
    enum class create_error { none, already_exists };

    /// Stores `obj` (metadata.name must be set); fills uid (`uid` when non-empty, else a random
    /// one), resourceVersion, creationTimestamp. Returns the stored object, or nullopt if the name
    /// is taken (→ 409 AlreadyExists).
    std::optional<boost::json::object> create(const std::string& resource, const std::string& ns,
                                              boost::json::object obj, const std::string& uid = "");
    std::optional<boost::json::object> get(const std::string& resource, const std::string& ns,
                                           const std::string& name) const;
    /// All objects of `resource` in `ns` (empty ns = all), sorted by namespace/name; `rv` receives
    /// the current resourceVersion.
    std::vector<boost::json::object> list(const std::string& resource, const std::string& ns,
                                          std::uint64_t& rv) const;
    /// Applies `mutate` to the stored object (if present and, when uid is non-empty, with that
    /// uid), bumps resourceVersion and emits MODIFIED. Returns the new object.
    std::optional<boost::json::object> update(const std::string& resource, const std::string& ns,
                                              const std::string& name, const std::string& uid,
                                              const std::function<void(boost::json::object&)>& mutate);
    /// As update(), but `mutate` may refuse (return false): then nothing changes, no event is
    /// emitted and the answer is nullopt (PUT/PATCH compare resourceVersions under the lock).
    std::optional<boost::json::object>
    update_if(const std::string& resource, const std::string& ns, const std::string& name,
              const std::function<bool(boost::json::object&)>& mutate);
    /// Removes the object (uid-checked when non-empty), emits DELETED; returns the last state.
    std::optional<boost::json::object> remove(const std::string& resource, const std::string& ns,
                                              const std::string& name, const std::string& uid = "");

    /// Subscribes to changes. from_rv == nullopt: synthetic ADDED for the current objects first.
    /// from_rv set: replays history after it; `expired` is set when it is too old, and then
    /// `oldest` is the oldest version a watch may still start from (upstream's "(Y)" in
    /// `too old resource version: X (Y)`).
    std::shared_ptr<watcher> watch(const std::string& resource, const std::string& ns,
                                   std::optional<std::uint64_t> from_rv, bool& expired,
                                   std::uint64_t* oldest = nullptr);
    /// An API-server restart: the watch cache starts again from a list at the current
    /// resourceVersion, so the event history before it is gone and a watch from an older
    /// version is expired (objects and resourceVersions stay: they are etcd's).
    void forget_history();
    void unwatch(const std::shared_ptr<watcher>& w);

    std::uint64_t current_rv() const;
    /// Ends all watches (they return nullopt) — used at shutdown.
    void shutdown();

private:
    using key = std::tuple<std::string, std::string, std::string>;
    void emit(watch_event ev); // mu_ held
    static constexpr std::size_t history_limit = 50000;
    mutable std::mutex mu_;
    std::uint64_t rv_ = 1;
    std::map<key, boost::json::object> objects_;
    std::deque<watch_event> history_;
    std::uint64_t history_floor_ = 0; ///< forget_history(): watches from below it expire
    std::vector<std::shared_ptr<watcher>> watchers_;
    bool shutdown_ = false;
};

} // namespace podpipe::kubesim
