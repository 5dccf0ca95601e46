#include "tools/kubesim/util.hpp"

#include <cstdio>
#include <ctime>

#include <openssl/rand.h>

namespace podpipe::kubesim {

std::string rfc3339(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string now_rfc3339() { return rfc3339(std::chrono::system_clock::now()); }

std::string rfc3339_nano(std::chrono::system_clock::time_point t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t - secs).count();
    std::string s = rfc3339(secs);
    s.pop_back(); // 'Z'
    if (nanos > 0) {
        char frac[24]; // "." + up to 19 digits of a long long + NUL
        std::snprintf(frac, sizeof frac, ".%09lld", static_cast<long long>(nanos));
        std::string f = frac;
        while (f.back() == '0')
            f.pop_back();
        s += f;
    }
    return s + "Z";
}

std::chrono::system_clock::time_point parse_rfc3339(std::string_view s) {
    std::tm tm{};
    std::string str(s);
    if (!strptime(str.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
        return {};
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

static void random_bytes(unsigned char* p, std::size_t n) {
    if (RAND_bytes(p, static_cast<int>(n)) != 1) {
        for (std::size_t i = 0; i < n; ++i)
            p[i] = static_cast<unsigned char>(std::rand());
    }
}

std::string random_hex(std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    unsigned char b[64];
    while (out.size() < n) {
        random_bytes(b, sizeof b);
        for (unsigned char c : b) {
            if (out.size() == n)
                break;
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

std::string random_uuid() {
    std::string h = random_hex(32);
    h[12] = '4';
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20, 12);
}

std::string random_name_suffix() {
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char b[5];
    random_bytes(b, sizeof b);
    std::string out;
    for (unsigned char c : b)
        out.push_back(alphabet[c % (sizeof alphabet - 1)]);
    return out;
}

bool lenient_bool(bool present, std::string_view value) {
    if (!present)
        return false;
    if (value == "0")
        return false;
    if (value.size() == 5) {
        std::string lower;
        for (char c : value)
            lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        if (lower == "false")
            return false;
    }
    return true;
}

json::object status_failure(int code, std::string_view reason, std::string_view message,
                            json::value details) {
    json::object o;
    o["kind"] = "Status";
    o["apiVersion"] = "v1";
    o["metadata"] = json::object{};
    o["status"] = "Failure";
    o["message"] = message;
    o["reason"] = reason;
    if (!details.is_null())
        o["details"] = std::move(details);
    o["code"] = code;
    return o;
}

json::value status_details(std::string_view name, std::string_view kind) {
    json::object d;
    if (!name.empty())
        d["name"] = name;
    d["kind"] = kind;
    return d;
}

std::string human_age(std::chrono::system_clock::duration d) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    if (s < 0)
        s = 0;
    if (s < 120)
        return std::to_string(s) + "s";
    if (s < 3600)
        return std::to_string(s / 60) + "m";
    if (s < 48 * 3600)
        return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

const json::object* obj_at(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_object())
        return nullptr;
    return &it->value().get_object();
}

const json::object* obj_at(const json::value& v, std::string_view key) {
    if (!v.is_object())
        return nullptr;
    return obj_at(v.get_object(), key);
}

const json::array* arr_at(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_array())
        return nullptr;
    return &it->value().get_array();
}

std::string str_at(const json::object& o, std::string_view key, std::string_view dflt) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string())
        return std::string(dflt);
    return std::string(it->value().get_string());
}

std::int64_t int_at(const json::object& o, std::string_view key, std::int64_t dflt) {
    auto it = o.find(key);
    if (it == o.end())
        return dflt;
    if (it->value().is_int64())
        return it->value().get_int64();
    if (it->value().is_uint64())
        return static_cast<std::int64_t>(it->value().get_uint64());
    if (it->value().is_double())
        return static_cast<std::int64_t>(it->value().get_double());
    return dflt;
}

std::string b64decode(std::string_view in, bool* valid) {
    static const std::string chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    bool ok = in.size() % 4 == 0;
    int val = 0, bits = -8;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '=') {
            ok = ok && i + 2 >= in.size();
            continue;
        }
        auto pos = chars.find(c);
        if (pos == std::string::npos) {
            ok = false;
            continue;
        }
        val = (val << 6) + static_cast<int>(pos);
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((val >> bits) & 0xff));
            bits -= 8;
        }
    }
    if (valid != nullptr)
        *valid = ok;
    return out;
}

std::string b64encode(std::string_view in) {
    static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    while (i + 2 < in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out += chars[(v >> 18) & 63];
        out += chars[(v >> 12) & 63];
        out += chars[(v >> 6) & 63];
        out += chars[v & 63];
        i += 3;
    }
    if (i + 1 == in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += chars[(v >> 18) & 63];
        out += chars[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += chars[(v >> 18) & 63];
        out += chars[(v >> 12) & 63];
        out += chars[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

} // namespace podpipe::kubesim
