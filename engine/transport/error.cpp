#include "engine/transport/error.hpp"

#include "engine/common/error.hpp"

#include <string>

namespace podpipe::transport {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "transport"; }

    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
        case errc::resolve_failed:
            return "host name did not resolve";
        case errc::connect_failed:
            return "TCP connect failed";
        case errc::timeout:
            return "operation timed out";
        case errc::tls_failed:
            return "TLS handshake failed";
        case errc::certificate_rejected:
            return "peer certificate rejected (CA or host name verification failed)";
        case errc::connection_reset:
            return "connection reset or closed by the peer";
        case errc::bad_response:
            return "malformed HTTP or WebSocket data from the peer";
        case errc::upgrade_rejected:
            return "WebSocket upgrade rejected by the server";
        case errc::subprotocol_mismatch:
            return "server chose no offered WebSocket subprotocol";
        case errc::bad_message:
            return "WebSocket message is not a binary channel message";
        case errc::message_too_large:
            return "WebSocket message larger than the receive limit";
        case errc::heartbeat_timeout:
            return "peer stopped answering WebSocket pings";
        case errc::abrupt_close:
            return "connection closed without a WebSocket close frame (1006)";
        case errc::closed:
            return "WebSocket closed";
        case errc::stopped:
            return "stopped by the caller";
        case errc::bad_argument:
            return "invalid argument";
        case errc::injected_fault:
            return "injected fault (test)";
        case errc::cancelled:
            return "interrupted: a stop was requested";
        }
        return "unknown transport error";
    }

    std::error_condition default_error_condition(int c) const noexcept override {
        switch (static_cast<errc>(c)) {
        case errc::resolve_failed:
        case errc::connect_failed:
        case errc::timeout:
        case errc::connection_reset:
        case errc::heartbeat_timeout:
        case errc::injected_fault:
            return condition::retryable;
        case errc::abrupt_close:
        case errc::closed:
            return condition::peer_closed;
        case errc::bad_response:
        case errc::bad_message:
        case errc::message_too_large:
            return condition::bad_input;
        default:
            return condition::fatal;
        }
    }

    // A reset connection and an abrupt close are both "the peer went away" and worth a retry.
    bool equivalent(int c, const std::error_condition& cond) const noexcept override {
        if (cond == condition::peer_closed &&
            (static_cast<errc>(c) == errc::connection_reset ||
             static_cast<errc>(c) == errc::heartbeat_timeout))
            return true;
        if (cond == condition::retryable && static_cast<errc>(c) == errc::abrupt_close)
            return true;
        return default_error_condition(c) == cond;
    }
};

} // namespace

const std::error_category& transport_category() noexcept {
    static const category instance;
    return instance;
}

} // namespace podpipe::transport
