#include "certctrl/http/response.hpp"

#include "certctrl/http/request_context.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

namespace certctrl::http {

namespace bh = boost::beast::http;

namespace {

response make(unsigned version, bool keep_alive, unsigned status, std::string body) {
    response res{static_cast<bh::status>(status), version};
    res.set(bh::field::content_type, "application/json");
    res.set(bh::field::cache_control, "no-store");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

}  // namespace

response json_data(request const& req, boost::json::value data, unsigned status) {
    boost::json::object o;
    o["data"] = std::move(data);
    return make(req.version(), req.keep_alive(), status, boost::json::serialize(o));
}

response json_text(request const& req, std::string body, unsigned status) {
    return make(req.version(), req.keep_alive(), status, std::move(body));
}

response no_content(request const& req) {
    response res{bh::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    return res;
}

boost::json::object error_body(app_error const& err) {
    auto const& info = describe(err.code);
    boost::json::object e;
    e["code"] = static_cast<int>(err.code);
    e["what"] = err.what.empty() ? std::string(info.default_what) : err.what;
    e["key"] = std::string(err.effective_key());
    e["params"] = err.params;
    boost::json::object o;
    o["error"] = std::move(e);
    return o;
}

response json_error(unsigned version, bool keep_alive, app_error const& err) {
    auto const& info = describe(err.code);
    response res = make(version, keep_alive, info.status, boost::json::serialize(error_body(err)));
    if (auto const* ra = err.params.if_contains("retry_after"); ra != nullptr && ra->is_int64()) {
        res.set(bh::field::retry_after, std::to_string(ra->get_int64()));
    }
    return res;
}

response json_error(request const& req, app_error const& err) {
    return json_error(req.version(), req.keep_alive(), err);
}

response error_response(request_context const& ctx, app_error const& err) {
    if (describe(err.code).status >= 500) {
        ctx.log(spdlog::level::err, "{} {} failed: code={} {}{}", std::string(ctx.req.method_string()),
                ctx.route, static_cast<int>(err.code), err.what,
                err.detail.empty() ? std::string() : " (" + err.detail + ")");
    }
    return json_error(ctx.req, err);
}

}  // namespace certctrl::http
