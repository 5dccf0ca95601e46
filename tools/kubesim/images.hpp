// image_map: maps a container image reference to a root filesystem and a default command
// (what the image's ENTRYPOINT/CMD would be). See README.md "Image map" for the file format.
//
// A root is a host directory whose top-level entries are bind-mounted read-only into a fresh
// writable tmpfs per container (so /tmp and new mount points are writable, the image is not).
// Built-in rules, applied after the file's rules: "*busybox*" and "*alpine*" → the busybox root
// built at startup under STATE/images/busybox from /bin/busybox; "ghcr.io/actions/actions-runner:*"
// → the runner root (STATE/images/runner); "*does-not-exist*" and "*invalid.registry*" → a pull
// failure; anything else → the host root "/".
#pragma once

#include <string>
#include <vector>

#include "engine/common/result.hpp"

namespace podpipe::kubesim {

struct image_root {
    std::string dir;                        ///< host directory holding the root's top-level entries
    std::vector<std::string> skip;          ///< top-level names never bound (proc, sys, dev, tmp, ...)
    std::vector<std::string> default_command; ///< used when the container has no command/args
    bool pull_fails = false; ///< the image cannot be pulled (ErrImagePull / ImagePullBackOff)
    /// A private image (map rule "auth"): it pulls only for a pod whose imagePullSecrets name a
    /// kubernetes.io/dockerconfigjson Secret with these credentials for the image's registry.
    std::string auth_username, auth_password;
    bool needs_auth() const { return !auth_username.empty() || !auth_password.empty(); }
};

/// The fully qualified reference a runtime pulls: "busybox" → "docker.io/library/busybox:latest".
std::string normalize_image(const std::string& image);
/// The containerd-style pull error for `image` (the waiting message of ErrImagePull);
/// `unauthorized`: the registry refused the credentials (or their absence) for a private image.
std::string pull_error_message(const std::string& image, bool unauthorized = false);
/// Whether `.dockerconfigjson` text holds `username`/`password` (as fields or as `auth`) for
/// the registry of `image` (keys "HOST", "https://HOST", "https://HOST/v1/" ...; Docker Hub
/// images also match "https://index.docker.io/v1/").
bool docker_config_allows(const std::string& docker_config_json, const std::string& image,
                          const std::string& username, const std::string& password);

class image_map {
public:
    /// Builds the busybox root under `state_dir`/images/busybox (from `busybox_path`) and loads
    /// the optional JSON map file (empty path = built-ins only).
    /// Also builds the runner root under `state_dir`/images/runner (busybox root + user runner
    /// uid 1001, /home/runner/{_work,externals}; the files of `externals_dir`, e.g. a static
    /// podpipe, copied into /home/runner/externals), used for ghcr.io/actions/actions-runner:*.
    result<void> init(const std::string& state_dir, const std::string& map_file,
                      const std::string& busybox_path = "/bin/busybox",
                      const std::string& externals_dir = "");

    /// First matching rule (fnmatch glob on the whole reference) wins.
    image_root resolve(const std::string& image) const;

private:
    struct rule {
        std::string match;
        image_root root;
    };
    std::vector<rule> rules_;
};

} // namespace podpipe::kubesim
