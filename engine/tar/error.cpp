#include "engine/tar/error.hpp"

#include <string>

namespace podpipe::tar {
namespace {

class tar_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "tar"; }

    std::string message(int e) const override {
        switch (static_cast<errc>(e)) {
        case errc::bad_checksum:
            return "tar header checksum mismatch (corrupt data or not a tar archive)";
        case errc::bad_header:
            return "malformed tar header";
        case errc::truncated:
            return "tar archive is truncated";
        case errc::too_large:
            return "tar metadata exceeds its size limit";
        case errc::unsupported:
            return "unsupported tar feature";
        case errc::bad_pax:
            return "malformed pax extended header";
        case errc::invalid_entry:
            return "entry cannot be written to a tar archive";
        }
        return "unknown tar error";
    }

    std::error_condition default_error_condition(int e) const noexcept override {
        switch (static_cast<errc>(e)) {
        case errc::bad_checksum:
        case errc::bad_header:
        case errc::truncated:
        case errc::too_large:
        case errc::bad_pax:
        case errc::unsupported: // a received stream podpipe cannot extract (GNU sparse files)
            return make_error_condition(condition::bad_input);
        case errc::invalid_entry:
            return make_error_condition(condition::fatal);
        }
        return {e, *this};
    }
};

} // namespace

const std::error_category& tar_category() noexcept {
    static const tar_category_impl instance;
    return instance;
}

} // namespace podpipe::tar
