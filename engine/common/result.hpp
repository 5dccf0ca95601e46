// result<T, E>: the subset of std::expected that podpipe uses, for C++20 / GCC 12 where
// <expected> is empty. A fallible function returns result<T>; callers test it with
// `if (!r)` and read `r.error()`. `fail(e)` plays the role of std::unexpected.
#pragma once

#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "engine/common/assert.hpp"

namespace podpipe {

template <class E>
struct failure {
    E error;
};

template <class E>
    requires(!std::is_error_code_enum_v<std::decay_t<E>>)
failure<std::decay_t<E>> fail(E&& e) {
    return failure<std::decay_t<E>>{std::forward<E>(e)};
}

/// Convenience: fail(errc::x) for any error-code enum with an is_error_code_enum specialization.
template <class Enum>
    requires std::is_error_code_enum_v<Enum>
failure<std::error_code> fail(Enum e) {
    return failure<std::error_code>{make_error_code(e)};
}

template <class T, class E = std::error_code>
class [[nodiscard]] result {
public:
    using value_type = T;
    using error_type = E;

    result()
        requires std::is_default_constructible_v<T>
        : v_(std::in_place_index<0>) {}

    template <class U = T>
        requires std::is_constructible_v<T, U&&> &&
                 (!std::is_same_v<std::remove_cvref_t<U>, result>)
    result(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}

    template <class G>
        requires std::is_constructible_v<E, G&&>
    result(failure<G> f) : v_(std::in_place_index<1>, std::move(f.error)) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & {
        PODPIPE_CHECK(has_value(), "result::value() on an error");
        return std::get<0>(v_);
    }
    const T& value() const& {
        PODPIPE_CHECK(has_value(), "result::value() on an error");
        return std::get<0>(v_);
    }
    T&& value() && {
        PODPIPE_CHECK(has_value(), "result::value() on an error");
        return std::get<0>(std::move(v_));
    }
    const E& error() const {
        PODPIPE_CHECK(!has_value(), "result::error() on a value");
        return std::get<1>(v_);
    }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] result<void, E> {
public:
    using value_type = void;
    using error_type = E;

    result() = default;

    template <class G>
        requires std::is_constructible_v<E, G&&>
    result(failure<G> f) : err_(std::move(f.error)), ok_(false) {}

    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    void value() const { PODPIPE_CHECK(ok_, "result::value() on an error"); }
    const E& error() const {
        PODPIPE_CHECK(!ok_, "result::error() on a value");
        return err_;
    }

private:
    E err_{};
    bool ok_ = true;
};

/// Propagates the error of a result-returning expression, otherwise yields nothing.
#define PODPIPE_TRY(expr)                                                                          \
    do {                                                                                           \
        if (auto podpipe_try_r_ = (expr); !podpipe_try_r_)                                         \
            return ::podpipe::fail(podpipe_try_r_.error());                                        \
    } while (0)

} // namespace podpipe
