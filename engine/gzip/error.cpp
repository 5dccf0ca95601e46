#include "engine/gzip/error.hpp"

#include <string>

namespace podpipe::gzip {
namespace {

class gzip_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "gzip"; }

    std::string message(int e) const override {
        switch (static_cast<errc>(e)) {
        case errc::bad_header:
            return "bad gzip header";
        case errc::bad_crc:
            return "gzip CRC mismatch";
        case errc::bad_length:
            return "gzip length mismatch";
        case errc::truncated:
            return "truncated gzip member";
        case errc::too_large:
            return "gzip member or chunk too large";
        case errc::corrupt_deflate:
            return "corrupt deflate data";
        case errc::output_too_small:
            return "output buffer too small";
        case errc::compress_failed:
            return "compression failed";
        }
        return "unknown gzip error";
    }

    std::error_condition default_error_condition(int e) const noexcept override {
        switch (static_cast<errc>(e)) {
        case errc::bad_header:
        case errc::bad_crc:
        case errc::bad_length:
        case errc::truncated:
        case errc::corrupt_deflate:
            return make_error_condition(condition::bad_input);
        case errc::too_large:
        case errc::output_too_small:
        case errc::compress_failed:
            return make_error_condition(condition::fatal);
        }
        return {e, *this};
    }
};

} // namespace

const std::error_category& gzip_category() noexcept {
    static const gzip_category_impl instance;
    return instance;
}

} // namespace podpipe::gzip
