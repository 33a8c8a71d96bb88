#include "certctrl/http/router.hpp"

#include "certctrl/core/hex.hpp"

#include <boost/beast/http/verb.hpp>

#include <charconv>
#include <stdexcept>

namespace certctrl::http {

namespace verb_ns = boost::beast::http;

std::optional<std::int64_t> path_params::id(std::string_view name) const {
    auto it = values_.find(name);
    if (it == values_.end() || !std::holds_alternative<std::int64_t>(it->second)) {
        return std::nullopt;
    }
    return std::get<std::int64_t>(it->second);
}

std::optional<std::string> path_params::str(std::string_view name) const {
    auto it = values_.find(name);
    if (it == values_.end() || !std::holds_alternative<std::string>(it->second)) {
        return std::nullopt;
    }
    return std::get<std::string>(it->second);
}

struct router::node {
    std::map<std::string, std::unique_ptr<node>, std::less<>> literals;
    std::unique_ptr<node> param;  // the one parameter child
    std::string param_name;
    bool param_is_id = false;
    std::map<verb_ns::verb, handler> handlers;
    std::string pattern;
};

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> segs;
    if (path.empty() || path.front() != '/') {
        return segs;
    }
    std::size_t pos = 1;
    for (;;) {
        auto next = path.find('/', pos);
        segs.push_back(
            path.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
        if (next == std::string_view::npos) {
            break;
        }
        pos = next + 1;
    }
    if (segs.size() == 1 && segs[0].empty()) {
        segs.clear();  // "/"
    }
    return segs;
}

}  // namespace

router::router() : root_(std::make_unique<node>()) {}
router::~router() = default;
router::router(router&&) noexcept = default;
router& router::operator=(router&&) noexcept = default;

void router::add(verb_ns::verb method, std::string_view pattern, handler h) {
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
    }
    node* n = root_.get();
    for (auto seg : split_path(pattern)) {
        if (seg.empty()) {
            throw std::invalid_argument("empty segment in route pattern: " + std::string(pattern));
        }
        bool const is_id = seg.front() == ':';
        bool const is_str = seg.front() == '{' && seg.back() == '}' && seg.size() > 2;
        if (is_id || is_str) {
            std::string name(is_id ? seg.substr(1) : seg.substr(1, seg.size() - 2));
            if (name.empty()) {
                throw std::invalid_argument("unnamed parameter in route pattern: " + std::string(pattern));
            }
            if (!n->param) {
                n->param = std::make_unique<node>();
                n->param_name = name;
                n->param_is_id = is_id;
            } else if (n->param_name != name || n->param_is_id != is_id) {
                throw std::invalid_argument("conflicting parameter '" + name +
                                            "' in route pattern: " + std::string(pattern));
            }
            n = n->param.get();
        } else {
            auto& child = n->literals[std::string(seg)];
            if (!child) {
                child = std::make_unique<node>();
            }
            n = child.get();
        }
    }
    if (n->handlers.contains(method)) {
        throw std::invalid_argument("duplicate route: " + std::string(verb_ns::to_string(method)) + " " +
                                    std::string(pattern));
    }
    n->handlers.emplace(method, std::move(h));
    n->pattern = std::string(pattern);
    routes_.emplace_back(method, std::string(pattern));
}

router::match router::find(verb_ns::verb method, std::string_view encoded_path) const {
    match m;
    if (encoded_path.empty() || encoded_path.front() != '/') {
        return m;
    }
    std::vector<std::string> segs;
    for (auto raw : split_path(encoded_path)) {
        auto d = percent_decode(raw);
        if (!d) {
            return m;
        }
        segs.push_back(std::move(*d));
    }
    // Depth-first: literal child first, then the parameter child. Parameter values are checked after
    // the structural match, so a malformed id on an existing route shape gives 400 rather than 404.
    struct binding {
        node const* owner;
        std::string const* value;
    };
    std::vector<binding> bound;
    std::function<node const*(node const*, std::size_t)> walk = [&](node const* n,
                                                                    std::size_t i) -> node const* {
        if (i == segs.size()) {
            return n->handlers.empty() ? nullptr : n;
        }
        if (auto it = n->literals.find(segs[i]); it != n->literals.end()) {
            if (auto const* r = walk(it->second.get(), i + 1)) {
                return r;
            }
        }
        if (n->param && !segs[i].empty()) {
            bound.push_back({n, &segs[i]});
            if (auto const* r = walk(n->param.get(), i + 1)) {
                return r;
            }
            bound.pop_back();
        }
        return nullptr;
    };
    node const* target = walk(root_.get(), 0);
    if (target == nullptr) {
        return m;
    }
    m.pattern = target->pattern;
    for (auto const& b : bound) {
        if (b.owner->param_is_id) {
            auto v = parse_positive_id(*b.value);
            if (!v) {
                m.outcome = match::kind::bad_param;
                m.error = make_error(
                    errc::bad_request,
                    "path parameter '" + b.owner->param_name + "' must be a positive 64-bit integer",
                    {{"param", b.owner->param_name}});
                return m;
            }
            m.params.set(b.owner->param_name, *v);
        } else {
            m.params.set(b.owner->param_name, *b.value);
        }
    }
    auto it = target->handlers.find(method);
    if (it == target->handlers.end()) {
        m.outcome = match::kind::method_not_allowed;
        for (auto const& [v, _] : target->handlers) {
            if (!m.allow.empty()) {
                m.allow += ", ";
            }
            m.allow += std::string(verb_ns::to_string(v));
        }
        return m;
    }
    m.outcome = match::kind::found;
    m.target = &it->second;
    return m;
}

}  // namespace certctrl::http
