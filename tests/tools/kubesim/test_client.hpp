// Minimal HTTPS and pods/exec WebSocket clients for kubesim tests (test code only). They speak the
// raw protocol of spec §2/§3 so tests can check bytes that kubectl hides (subprotocol choice,
// status JSON, close codes, pongs). Beast stays inside test_client.cpp (slow TU; STYLE.md).
// Not thread-safe; one client per thread. Every call blocks; failures throw std::runtime_error.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace podpipe::kubesim::testing {

struct http_reply {
    int status = 0;
    std::map<std::string, std::string> headers; ///< lower-case names; repeats joined by ", "
    std::string body;
};

/// One HTTPS request to 127.0.0.1:port (CA from `ca_file`, bearer `token` unless empty).
http_reply https_request(int port, const std::string& ca_file, const std::string& token,
                         const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::map<std::string, std::string>& headers = {});

class ws_exec_client {
public:
    ws_exec_client(int port, std::string ca_file, std::string token);
    ~ws_exec_client();
    ws_exec_client(const ws_exec_client&) = delete;
    ws_exec_client& operator=(const ws_exec_client&) = delete;

    /// WebSocket handshake for `target` offering `protocols` (comma-separated). Returns the HTTP
    /// status of the answer (101 when upgraded); body() holds a declined answer's body.
    int open(const std::string& target, const std::string& protocols);
    const std::string& protocol() const;
    const std::string& body() const;

    /// Sends one binary message.
    void send(std::string_view bytes);
    void ping();
    int pongs() const;

    struct message {
        bool closed = false; ///< the server's close frame arrived (or the connection ended)
        int close_code = 0;  ///< close code when closed by a close frame, else 0
        bool eof = false;    ///< the connection ended without a close frame
        std::string data;    ///< channel byte first
    };
    /// Reads the next data message, answering control frames on the way.
    message read();
    /// Sends our close frame (1000) if the connection is still open.
    void close();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::kubesim::testing
