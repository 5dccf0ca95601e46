#include "engine/common/error.hpp"

namespace podpipe {
namespace {

class condition_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "podpipe"; }

    std::string message(int c) const override {
        switch (static_cast<condition>(c)) {
        case condition::retryable:
            return "temporary failure";
        case condition::peer_closed:
            return "peer closed the connection";
        case condition::bad_input:
            return "bad input";
        case condition::unsafe_path:
            return "unsafe path";
        case condition::fatal:
            return "fatal error";
        }
        return "unknown condition";
    }

    // errno values that mean the same thing as our conditions.
    bool equivalent(const std::error_code& code, int c) const noexcept override {
        if (code.category() == std::system_category() || code.category() == std::generic_category()) {
            const int e = code.value();
            switch (static_cast<condition>(c)) {
            case condition::retryable:
                return e == EAGAIN || e == EINTR || e == ETIMEDOUT || e == ECONNRESET;
            case condition::peer_closed:
                return e == EPIPE || e == ECONNRESET || e == ECONNABORTED;
            default:
                return false;
            }
        }
        return code.default_error_condition() == std::error_condition(c, *this);
    }
};

} // namespace

const std::error_category& condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

} // namespace podpipe
