// Internal to kubesim: Beast types shared by server.cpp and exec_session.cpp only. Do not
// include from any other file (Beast TUs are slow to compile; STYLE.md).
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "tools/kubesim/api.hpp"
#include "tools/kubesim/kubelet.hpp"

namespace podpipe::kubesim::detail {

using tls_stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
using http_request = boost::beast::http::request<boost::beast::http::string_body>;

/// Runs one pods/exec WebSocket session on `stream` (whose socket belongs to `ioc`, which this
/// function runs until the session ends). Negotiates the subprotocol (403 empty body when none
/// matches), then follows spec §2 exactly. Returns when the connection is finished.
void run_exec_session(tls_stream& stream, boost::asio::io_context& ioc, http_request req,
                      exec_plan plan, kubelet& kubelet);

} // namespace podpipe::kubesim::detail
