#include "engine/pipeline/copy_tree.hpp"

#include "engine/common/unique_fd.hpp"
#include "engine/pipeline/byte_stream.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

namespace podpipe::pipeline {

result<copy_tree_stats, transfer_error> copy_tree(const std::string& source,
                                                  const std::string& dest,
                                                  const send_options& send,
                                                  const recv_options& recv,
                                                  std::stop_token stop) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return fail(transfer_error(std::error_code(errno, std::generic_category()),
                                   "creating the pipe of a local copy"));
    unique_fd read_end(fds[0]);
    unique_fd write_end(fds[1]);
    recv_options ro = recv;
    ro.require_manifest = true;
    result<transfer_stats, transfer_error> sent = transfer_stats{};
    result<transfer_stats, transfer_error> got = transfer_stats{};
    {
        std::jthread sender([&](std::stop_token) {
            // A receiver that failed closes the pipe: the write must fail with EPIPE, not
            // raise SIGPIPE (thread-directed, so blocking it here is enough).
            sigset_t pipe_sig;
            sigemptyset(&pipe_sig);
            sigaddset(&pipe_sig, SIGPIPE);
            pthread_sigmask(SIG_BLOCK, &pipe_sig, nullptr);
            fd_sink sink(write_end.get());
            sent = send_tree(source, sink, send, stop);
            write_end.reset(); // EOF for the receiver, also after a failure
        });
        fd_source src(read_end.get());
        got = recv_tree(src, dest, ro, stop);
        read_end.reset(); // a failed receiver must not leave the sender blocked on a full pipe
    }
    // The sender's failure explains a receiver's (a stream cut short), not the other way,
    // unless the sender only saw the receiver go away.
    const bool cut_by_receiver = !got && sent.error().code == std::errc::broken_pipe;
    if (!sent && !cut_by_receiver)
        return fail(transfer_error(sent.error().code, "reading: " + sent.error().detail));
    if (!got)
        return fail(transfer_error(got.error().code, "writing: " + got.error().detail));
    return copy_tree_stats{std::move(*sent), std::move(*got)};
}

} // namespace podpipe::pipeline
