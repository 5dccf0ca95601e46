#include "engine/io/error.hpp"

#include <string>

namespace podpipe::io {
namespace {

class io_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "podpipe.io"; }

    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
        case errc::unsafe_path:
            return "path escapes the target directory";
        case errc::io_failed:
            return "I/O operation failed";
        case errc::root_not_found:
            return "directory does not exist";
        case errc::not_a_directory:
            return "not a directory";
        case errc::bad_entry:
            return "malformed entry";
        case errc::cancelled:
            return "cancelled";
        case errc::bad_snapshot:
            return "unusable tree snapshot";
        }
        return "unknown io error";
    }

    std::error_condition default_error_condition(int c) const noexcept override {
        switch (static_cast<errc>(c)) {
        case errc::unsafe_path:
            return make_error_condition(condition::unsafe_path);
        case errc::bad_entry:
        case errc::bad_snapshot:
            return make_error_condition(condition::bad_input);
        case errc::io_failed:
        case errc::root_not_found:
        case errc::not_a_directory:
        case errc::cancelled:
            return make_error_condition(condition::fatal);
        }
        return {c, *this};
    }
};

} // namespace

const std::error_category& io_category() noexcept {
    static const io_category_impl instance;
    return instance;
}

} // namespace podpipe::io
