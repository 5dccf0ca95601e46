#include "tools/kubesim/selectors.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include "tools/kubesim/validation.hpp"

namespace podpipe::kubesim {
namespace {

std::error_code invalid() { return std::make_error_code(std::errc::invalid_argument); }

// The label selector lexer and recursive-descent parser follow the grammar of apimachinery's
// labels.Parse (pkg/labels/selector.go): the same tokens, the same contexts in which `in`/`notin`
// are plain identifiers, and the same error texts.
enum class tok {
    error,
    end,
    close_par,
    comma,
    not_op,
    double_eq,
    eq,
    gt,
    ident,
    in,
    lt,
    neq,
    notin,
    open_par
};

struct item {
    tok t;
    std::string lit;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_special(char c) {
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

std::optional<tok> keyword(std::string_view s) {
    static const std::pair<const char*, tok> table[] = {
        {")", tok::close_par}, {",", tok::comma},     {"!", tok::not_op},  {"==", tok::double_eq},
        {"=", tok::eq},        {">", tok::gt},        {"in", tok::in},     {"<", tok::lt},
        {"!=", tok::neq},      {"notin", tok::notin}, {"(", tok::open_par}};
    for (const auto& [k, t] : table)
        if (s == k)
            return t;
    return std::nullopt;
}

std::vector<item> lex(std::string_view s) {
    std::vector<item> out;
    std::size_t pos = 0;
    while (true) {
        while (pos < s.size() && is_space(s[pos]))
            ++pos;
        if (pos >= s.size()) {
            out.push_back({tok::end, ""});
            return out;
        }
        if (is_special(s[pos])) {
            // Longest run of special characters that is still a token.
            std::string buf;
            std::optional<item> last;
            while (pos < s.size() && is_special(s[pos])) {
                buf.push_back(s[pos]);
                if (auto t = keyword(buf)) {
                    last = item{*t, buf};
                    ++pos;
                } else if (last) {
                    break;
                } else {
                    ++pos;
                }
            }
            if (!last)
                out.push_back({tok::error, "error expected: keyword found '" + buf + "'"});
            else
                out.push_back(*last);
            continue;
        }
        std::string buf;
        while (pos < s.size() && !is_special(s[pos]) && !is_space(s[pos]))
            buf.push_back(s[pos++]);
        auto t = keyword(buf);
        out.push_back({t ? *t : tok::ident, buf});
    }
}

class label_parser {
public:
    explicit label_parser(std::string_view s)
        : items_(lex(s)) {}

    bool parse(selector& out, std::string& error) {
        while (true) {
            auto [t, lit] = peek(true);
            if (t == tok::end)
                return true;
            if (t != tok::ident && t != tok::not_op) {
                error = "found '" + lit + "', expected: !, identifier, or 'end of string'";
                return false;
            }
            selector_requirement r;
            if (!requirement(r, error)) {
                error = "unable to parse requirement: " + error;
                return false;
            }
            out.requirements.push_back(std::move(r));
            auto [t2, l2] = next(true);
            if (t2 == tok::end)
                return true;
            if (t2 != tok::comma) {
                error = "found '" + l2 + "', expected: ',' or 'end of string'";
                return false;
            }
            auto [t3, l3] = peek(true);
            if (t3 != tok::ident && t3 != tok::not_op) {
                error = "found '" + l3 + "', expected: identifier after ','";
                return false;
            }
        }
    }

private:
    /// In the values context `in` and `notin` are identifiers.
    item peek(bool values) const {
        item i = items_[std::min(pos_, items_.size() - 1)];
        if (values && (i.t == tok::in || i.t == tok::notin))
            i.t = tok::ident;
        return i;
    }

    item next(bool values) {
        item i = peek(values);
        if (pos_ < items_.size() - 1)
            ++pos_;
        return i;
    }

    bool requirement(selector_requirement& r, std::string& error) {
        using op = selector_requirement::op;
        item first = next(true);
        bool negated = first.t == tok::not_op;
        if (negated)
            first = next(true);
        const tok t = first.t;
        const std::string lit = first.lit;
        if (t != tok::ident) {
            error = "found '" + lit + "', expected: identifier";
            return false;
        }
        if (auto msgs = qualified_name_errors(lit); !msgs.empty()) {
            error = "<nil>: " + invalid_error("", go_quote(lit), join(msgs)).body;
            return false;
        }
        r.key = lit;
        auto [la, la_lit] = peek(true);
        if (negated || la == tok::end || la == tok::comma) {
            r.operation = negated ? op::not_exists : op::exists;
            return validate(r, error);
        }
        auto [ot, olit] = next(false);
        switch (ot) {
        case tok::in:
            r.operation = op::in;
            break;
        case tok::notin:
            r.operation = op::notin;
            break;
        case tok::eq:
        case tok::double_eq:
            r.operation = op::eq;
            break;
        case tok::neq:
            r.operation = op::neq;
            break;
        case tok::gt:
            r.operation = op::gt;
            break;
        case tok::lt:
            r.operation = op::lt;
            break;
        default:
            error = "found '" + olit + "', expected: in, notin, =, ==, !=, gt, lt";
            return false;
        }
        std::set<std::string> values;
        if (r.operation == op::in || r.operation == op::notin) {
            if (!value_set(values, error))
                return false;
        } else {
            auto [vt, vlit] = peek(true);
            if (vt == tok::end || vt == tok::comma) {
                values.insert("");
            } else {
                next(true);
                if (vt != tok::ident) {
                    error = "found '" + vlit + "', expected: identifier";
                    return false;
                }
                values.insert(vlit);
            }
        }
        r.values.assign(values.begin(), values.end());
        return validate(r, error);
    }

    bool value_set(std::set<std::string>& values, std::string& error) {
        auto [t, lit] = next(true);
        if (t != tok::open_par) {
            error = "found '" + lit + "' expected: '('";
            return false;
        }
        auto [la, la_lit] = peek(true);
        if (la == tok::close_par) {
            next(true);
            values.insert("");
            return true;
        }
        if (la != tok::ident && la != tok::comma) {
            error = "found '" + la_lit + "', expected: ',', ')' or identifier";
            return false;
        }
        while (true) {
            auto [it, ilit] = next(true);
            if (it == tok::ident) {
                values.insert(ilit);
                auto [t2, l2] = peek(true);
                if (t2 == tok::comma)
                    continue;
                if (t2 == tok::close_par)
                    break;
                error = "found '" + l2 + "', expected: ',' or ')'";
                return false;
            }
            if (it == tok::comma) {
                if (values.empty())
                    values.insert("");
                auto [t2, l2] = peek(true);
                if (t2 == tok::close_par) {
                    values.insert("");
                    break;
                }
                if (t2 == tok::comma)
                    values.insert("");
                continue;
            }
            error = "found '" + ilit + "', expected: ',', or identifier";
            return false;
        }
        if (next(true).t != tok::close_par) {
            error = "found '" + la_lit + "', expected: ')'";
            return false;
        }
        return true;
    }

    static std::string join(const std::vector<std::string>& msgs) {
        std::string s;
        for (const auto& m : msgs)
            s += (s.empty() ? "" : "; ") + m;
        return s;
    }

    /// NewRequirement's checks (key, value count, Gt/Lt integers, label values).
    static bool validate(const selector_requirement& r, std::string& error) {
        using op = selector_requirement::op;
        field_errors errs;
        if (auto msgs = qualified_name_errors(r.key); !msgs.empty())
            errs.push_back(invalid_error("key", go_quote(r.key), join(msgs)));
        if (r.operation == op::gt || r.operation == op::lt)
            for (std::size_t i = 0; i < r.values.size(); ++i) {
                long long v = 0;
                const std::string& s = r.values[i];
                auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
                if (ec != std::errc() || p != s.data() + s.size() || s.empty())
                    errs.push_back(invalid_error("values[" + std::to_string(i) + "]", go_quote(s),
                                                 "for 'Gt', 'Lt' operators, the value must be an "
                                                 "integer"));
            }
        for (std::size_t i = 0; i < r.values.size(); ++i)
            if (auto msgs = label_value_errors(r.values[i]); !msgs.empty())
                errs.push_back(invalid_error("values[" + std::to_string(i) + "][" + r.key + "]",
                                             go_quote(r.values[i]), join(msgs)));
        if (errs.empty())
            return true;
        if (errs.size() == 1) {
            error = errs[0].text();
        } else {
            error = "[";
            for (std::size_t i = 0; i < errs.size(); ++i)
                error += (i ? ", " : "") + errs[i].text();
            error += "]";
        }
        return false;
    }

    std::vector<item> items_;
    std::size_t pos_ = 0;
};

/// Splits a field selector on commas not escaped by a backslash (fields.splitTerms).
std::vector<std::string> split_field_terms(std::string_view s) {
    std::vector<std::string> out;
    if (s.empty())
        return out;
    std::string cur;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            cur.push_back(s[i]);
            cur.push_back(s[++i]);
        } else if (s[i] == ',') {
            out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(s[i]);
        }
    }
    out.push_back(cur);
    return out;
}

bool unescape(std::string_view v, std::string& out) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\') {
            if (i + 1 >= v.size() || (v[i + 1] != '\\' && v[i + 1] != ',' && v[i + 1] != '='))
                return false;
            out.push_back(v[++i]);
        } else if (v[i] == ',' || v[i] == '=') {
            return false;
        } else {
            out.push_back(v[i]);
        }
    }
    return true;
}

} // namespace

result<selector> parse_label_selector(std::string_view text, std::string* message) {
    selector s;
    std::string error;
    label_parser p(text);
    if (!p.parse(s, error)) {
        if (message)
            *message = error;
        return fail(invalid());
    }
    std::stable_sort(s.requirements.begin(), s.requirements.end(),
                     [](const auto& a, const auto& b) { return a.key < b.key; });
    return s;
}

result<selector> parse_field_selector(std::string_view text, std::string* message) {
    selector s;
    auto bad = [&](const std::string& term) {
        if (message)
            *message =
                "invalid selector: '" + std::string(text) + "'; can't understand '" + term + "'";
        return fail(invalid());
    };
    std::vector<std::string> terms = split_field_terms(text);
    std::sort(terms.begin(), terms.end());
    for (const std::string& term : terms) {
        if (term.empty())
            continue;
        selector_requirement r;
        std::size_t at = std::string::npos, len = 0;
        for (std::size_t i = 0; i < term.size() && at == std::string::npos; ++i) {
            std::string_view rest = std::string_view(term).substr(i);
            if (rest.starts_with("!=")) {
                at = i, len = 2, r.operation = selector_requirement::op::neq;
            } else if (rest.starts_with("==")) {
                at = i, len = 2;
            } else if (rest.starts_with("=")) {
                at = i, len = 1;
            }
        }
        if (at == std::string::npos)
            return bad(term);
        r.key = term.substr(0, at);
        std::string value;
        if (!unescape(std::string_view(term).substr(at + len), value)) {
            if (message)
                *message = "invalid field selector value: " + term.substr(at + len);
            return fail(invalid());
        }
        r.values.push_back(std::move(value));
        s.requirements.push_back(std::move(r));
    }
    return s;
}

bool matches_labels(const selector& s, const std::map<std::string, std::string>& labels) {
    using op = selector_requirement::op;
    for (const auto& r : s.requirements) {
        auto it = labels.find(r.key);
        bool has = it != labels.end();
        bool in_values =
            has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
        switch (r.operation) {
        case op::eq:
        case op::in:
            if (!in_values)
                return false;
            break;
        case op::neq:
        case op::notin:
            if (in_values)
                return false;
            break;
        case op::exists:
            if (!has)
                return false;
            break;
        case op::not_exists:
            if (has)
                return false;
            break;
        case op::gt:
        case op::lt: {
            long long have = 0, want = 0;
            if (!has || r.values.size() != 1)
                return false;
            const std::string& hv = it->second;
            auto [p1, e1] = std::from_chars(hv.data(), hv.data() + hv.size(), have);
            auto [p2, e2] =
                std::from_chars(r.values[0].data(), r.values[0].data() + r.values[0].size(), want);
            if (e1 != std::errc() || e2 != std::errc() || p1 != hv.data() + hv.size())
                return false;
            if (r.operation == op::gt ? !(have > want) : !(have < want))
                return false;
            break;
        }
        }
    }
    return true;
}

bool matches_fields(const selector& s,
                    const std::function<std::optional<std::string>(const std::string&)>& field) {
    for (const auto& r : s.requirements) {
        auto v = field(r.key);
        if (!v)
            return false;
        bool eq = *v == r.values.at(0);
        if (r.operation == selector_requirement::op::neq ? eq : !eq)
            return false;
    }
    return true;
}

} // namespace podpipe::kubesim
