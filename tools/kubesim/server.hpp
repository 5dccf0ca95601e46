// server: the HTTPS front end. Accepts TLS on 127.0.0.1 (ALPN http/1.1 or none, never h2), one
// thread per connection running synchronous Beast HTTP/1.1 with keep-alive; authenticates, then
// hands requests to api_server, streaming chunked bodies for watch/log follow, and switches
// pods/exec upgrades to an exec session (exec_session.cpp) on the same thread.
// Beast and OpenSSL stay inside server.cpp / exec_session.cpp (pimpl).
#pragma once

#include <memory>
#include <string>

#include "engine/common/result.hpp"
#include "tools/kubesim/api.hpp"
#include "tools/kubesim/kubelet.hpp"

namespace podpipe::kubesim {

struct server_options {
    std::string cert_pem;
    std::string key_pem;
    int port = 0; ///< 0 = pick a free port
};

class server {
public:
    server(api_server& api, kubelet& kubelet, server_options options);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds 127.0.0.1:port and starts the accept thread; returns the bound port.
    result<int> start();
    /// Stops accepting, shuts down every open connection and joins all threads. Idempotent.
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::kubesim
