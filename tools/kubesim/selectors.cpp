#include "tools/kubesim/selectors.hpp"

#include <algorithm>

namespace podpipe::kubesim {
namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return std::string(s);
}

/// Splits on commas that are not inside parentheses.
std::vector<std::string> split_terms(std::string_view text) {
    std::vector<std::string> out;
    int depth = 0;
    std::string cur;
    for (char c : text) {
        if (c == '(')
            ++depth;
        if (c == ')')
            --depth;
        if (c == ',' && depth == 0) {
            out.push_back(trim(cur));
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!trim(cur).empty() || !out.empty())
        out.push_back(trim(cur));
    return out;
}

std::error_code invalid() { return std::make_error_code(std::errc::invalid_argument); }

result<selector_requirement> parse_eq(const std::string& term) {
    selector_requirement r;
    std::size_t p;
    if ((p = term.find("!=")) != std::string::npos) {
        r.operation = selector_requirement::op::neq;
        r.key = trim(std::string_view(term).substr(0, p));
        r.values.push_back(trim(std::string_view(term).substr(p + 2)));
    } else if ((p = term.find("==")) != std::string::npos) {
        r.key = trim(std::string_view(term).substr(0, p));
        r.values.push_back(trim(std::string_view(term).substr(p + 2)));
    } else if ((p = term.find('=')) != std::string::npos) {
        r.key = trim(std::string_view(term).substr(0, p));
        r.values.push_back(trim(std::string_view(term).substr(p + 1)));
    } else {
        return fail(invalid());
    }
    if (r.key.empty())
        return fail(invalid());
    return r;
}

} // namespace

result<selector> parse_label_selector(std::string_view text) {
    selector s;
    for (const std::string& term : split_terms(text)) {
        if (term.empty())
            return fail(invalid());
        selector_requirement r;
        auto open = term.find('(');
        if (open != std::string::npos) {
            auto close = term.rfind(')');
            if (close == std::string::npos || close < open)
                return fail(invalid());
            std::string head = trim(std::string_view(term).substr(0, open));
            auto sp = head.find_last_of(" \t");
            if (sp == std::string::npos)
                return fail(invalid());
            std::string opname = trim(std::string_view(head).substr(sp + 1));
            r.key = trim(std::string_view(head).substr(0, sp));
            if (opname == "in")
                r.operation = selector_requirement::op::in;
            else if (opname == "notin")
                r.operation = selector_requirement::op::notin;
            else
                return fail(invalid());
            std::string inner = term.substr(open + 1, close - open - 1);
            std::size_t start = 0;
            while (true) {
                auto comma = inner.find(',', start);
                std::string v = trim(std::string_view(inner).substr(
                    start, comma == std::string::npos ? std::string::npos : comma - start));
                if (!v.empty())
                    r.values.push_back(v);
                if (comma == std::string::npos)
                    break;
                start = comma + 1;
            }
            if (r.key.empty())
                return fail(invalid());
        } else if (term.find('=') != std::string::npos) {
            auto eq = parse_eq(term);
            if (!eq)
                return fail(eq.error());
            r = *eq;
        } else if (term[0] == '!') {
            r.operation = selector_requirement::op::not_exists;
            r.key = trim(std::string_view(term).substr(1));
        } else {
            r.operation = selector_requirement::op::exists;
            r.key = term;
        }
        s.requirements.push_back(std::move(r));
    }
    return s;
}

result<selector> parse_field_selector(std::string_view text) {
    selector s;
    for (const std::string& term : split_terms(text)) {
        auto eq = parse_eq(term);
        if (!eq)
            return fail(eq.error());
        s.requirements.push_back(*eq);
    }
    return s;
}

bool matches_labels(const selector& s, const std::map<std::string, std::string>& labels) {
    using op = selector_requirement::op;
    for (const auto& r : s.requirements) {
        auto it = labels.find(r.key);
        bool has = it != labels.end();
        bool in_values = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
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
