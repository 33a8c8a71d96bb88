#pragma once

#include "certctrl/core/error.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/http/types.hpp"

#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace certctrl::http {

struct request_context;

/// Values of the named path parameters of a matched route.
class path_params {
  public:
    void set(std::string name, std::variant<std::int64_t, std::string> v) {
        values_[std::move(name)] = std::move(v);
    }
    /// The positive 64-bit id bound to `:name`; nullopt if the route has no such id parameter.
    std::optional<std::int64_t> id(std::string_view name) const;
    /// The text bound to `{name}`; nullopt if the route has no such string parameter.
    std::optional<std::string> str(std::string_view name) const;

  private:
    std::map<std::string, std::variant<std::int64_t, std::string>, std::less<>> values_;
};

/// Maps (method, path) to a handler. Pattern segments: `literal`, `:name` (a positive 64-bit integer,
/// else the request gets 400) and `{name}` (any non-empty text). Literal segments win over parameters.
class router {
  public:
    using handler = std::function<awaitable<response>(request_context&)>;

    struct match {
        enum class kind { found, not_found, method_not_allowed, bad_param };
        kind outcome = kind::not_found;
        handler const* target = nullptr;
        std::string pattern;  // the matched route pattern (for logs and metrics); empty if none
        path_params params;
        std::string allow;  // for method_not_allowed: the methods the path accepts, comma separated
        app_error error;    // for bad_param
    };

    router();
    ~router();
    router(router&&) noexcept;
    router& operator=(router&&) noexcept;

    /// Registers `h` for `method` on `pattern`. Throws std::invalid_argument for a malformed pattern,
    /// a duplicate route, or a parameter named differently from a sibling's at the same position.
    void add(boost::beast::http::verb method, std::string_view pattern, handler h);

    /// Finds the handler for a path as sent (percent-encoded, no query string). Segments are split first
    /// and then decoded, so an encoded '/' stays inside its segment.
    match find(boost::beast::http::verb method, std::string_view encoded_path) const;

    /// Every (method, pattern) registered, in registration order.
    std::vector<std::pair<boost::beast::http::verb, std::string>> const& routes() const { return routes_; }

  private:
    struct node;
    std::unique_ptr<node> root_;
    std::vector<std::pair<boost::beast::http::verb, std::string>> routes_;
};

}  // namespace certctrl::http
