#include "hooks/commands/errors.hpp"

namespace podpipe::hook {

namespace {

class hook_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "hook"; }

    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
        case errc::bad_input:
            return "malformed hook input";
        case errc::unknown_command:
            return "unknown hook command";
        case errc::bad_env:
            return "invalid hook environment";
        case errc::response_file:
            return "cannot write the response file";
        case errc::permissions:
            return "missing permissions";
        case errc::job_pod:
            return "job pod failure";
        case errc::transfer:
            return "transfer failed";
        case errc::step:
            return "step could not run";
        case errc::temp_sync:
            return "cannot sync the runner's _temp";
        case errc::temp_manifest:
            return "unusable _temp manifest";
        }
        return "unknown hook error";
    }

    std::error_condition default_error_condition(int c) const noexcept override {
        switch (static_cast<errc>(c)) {
        case errc::response_file:
        case errc::job_pod:
        case errc::transfer:
        case errc::step:
        case errc::permissions:
        case errc::temp_sync:
            return condition::fatal;
        default:
            break;
        }
        return condition::bad_input;
    }
};

} // namespace

const std::error_category& hook_category() noexcept {
    static const hook_category_impl instance;
    return instance;
}

hook_error make_error(errc e, std::string message) {
    hook_error err(make_error_code(e), std::string());
    err.message = std::move(message);
    return err;
}

} // namespace podpipe::hook
