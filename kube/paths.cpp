#include "kube/paths.hpp"

#include "kube/exec_request.hpp"

namespace podpipe::kube {

namespace {

std::string namespaced(std::string_view ns, std::string_view resource) {
    return "/api/v1/namespaces/" + percent_encode(ns) + "/" + std::string(resource);
}

class query_builder {
public:
    explicit query_builder(std::string path)
        : s_(std::move(path)) {}

    void add(std::string_view key, std::string_view value) {
        s_.push_back(first_ ? '?' : '&');
        first_ = false;
        s_.append(key);
        s_.push_back('=');
        s_ += percent_encode(value);
    }

    void add_nonempty(std::string_view key, std::string_view value) {
        if (!value.empty())
            add(key, value);
    }

    std::string take() { return std::move(s_); }

private:
    std::string s_;
    bool first_ = true;
};

} // namespace

std::string pods_path(std::string_view ns) { return namespaced(ns, "pods"); }

std::string pod_path(std::string_view ns, std::string_view name) {
    return namespaced(ns, "pods/") + percent_encode(name);
}

std::string secrets_path(std::string_view ns) { return namespaced(ns, "secrets"); }

std::string secret_path(std::string_view ns, std::string_view name) {
    return namespaced(ns, "secrets/") + percent_encode(name);
}

std::string pvcs_path(std::string_view ns) { return namespaced(ns, "persistentvolumeclaims"); }

std::string jobs_path(std::string_view ns) {
    return "/apis/batch/v1/namespaces/" + percent_encode(ns) + "/jobs";
}

std::string job_path(std::string_view ns, std::string_view name) {
    return jobs_path(ns) + "/" + percent_encode(name);
}

std::string pvc_path(std::string_view ns, std::string_view name) {
    return namespaced(ns, "persistentvolumeclaims/") + percent_encode(name);
}

std::string node_path(std::string_view name) { return "/api/v1/nodes/" + percent_encode(name); }

std::string list_path(std::string_view collection_path, const list_options& o) {
    query_builder q{std::string(collection_path)};
    if (o.allow_watch_bookmarks)
        q.add("allowWatchBookmarks", "true");
    q.add_nonempty("continue", o.continue_token);
    q.add_nonempty("fieldSelector", o.field_selector);
    q.add_nonempty("labelSelector", o.label_selector);
    if (o.limit)
        q.add("limit", std::to_string(*o.limit));
    q.add_nonempty("resourceVersion", o.resource_version);
    if (o.timeout_seconds)
        q.add("timeoutSeconds", std::to_string(*o.timeout_seconds));
    if (o.watch)
        q.add("watch", "true");
    return q.take();
}

std::string pod_log_path(std::string_view ns, std::string_view name, const log_options& o) {
    query_builder q{pod_path(ns, name) + "/log"};
    q.add_nonempty("container", o.container);
    if (o.follow)
        q.add("follow", "true");
    q.add_nonempty("sinceTime", o.since_time);
    if (o.timestamps)
        q.add("timestamps", "true");
    return q.take();
}

} // namespace podpipe::kube
