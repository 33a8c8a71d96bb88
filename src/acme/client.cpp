#include "certctrl/acme/client.hpp"

#include "certctrl/acme/ari.hpp"
#include "certctrl/acme/jws.hpp"

#include <boost/json.hpp>

#include <cstdlib>

namespace certctrl::acme {

namespace json = boost::json;

namespace {

std::string str(json::object const& o, char const* k) {
    auto const* v = o.if_contains(k);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

int parse_retry_after(std::string const& h) {
    if (h.empty()) {
        return 0;
    }
    char* end = nullptr;
    long const v = std::strtol(h.c_str(), &end, 10);
    if (end != nullptr && *end == '\0' && v >= 0) {
        return static_cast<int>(std::min(v, 86400L));
    }
    return 0;  // an HTTP-date: treated as "no hint" (callers poll with their own backoff)
}

}  // namespace

bool retryable(app_error const& e) {
    auto const* r = e.params.if_contains("retryable");
    return r != nullptr && r->is_bool() && r->get_bool();
}

app_error problem_error(unsigned status, std::string const& body, int retry_after) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    std::string type;
    std::string detail;
    if (!ec && v.is_object()) {
        type = str(v.get_object(), "type");
        detail = str(v.get_object(), "detail");
        if (auto const* subs = v.get_object().if_contains("subproblems");
            subs != nullptr && subs->is_array()) {
            for (auto const& s : subs->get_array()) {
                if (s.is_object()) {
                    detail += "; " + str(s.get_object(), "detail");
                }
            }
        }
    }
    std::string const prefix = "urn:ietf:params:acme:error:";
    if (type.rfind(prefix, 0) == 0) {
        type = type.substr(prefix.size());
    }
    bool const transient = status >= 500 || status == 429 || type == "rateLimited" || type == "badNonce" ||
                           type == "serverInternal";
    json::object params{{"acme_type", type}, {"http_status", status}, {"retryable", transient}};
    if (retry_after > 0) {
        params["retry_after"] = retry_after;
    }
    std::string what = "The CA answered " + std::to_string(status);
    if (!type.empty()) {
        what += " (" + type + ")";
    }
    // The CA's own words only from an RFC 8555 problem document (an ACME error type), printable and bounded:
    // never the body of whatever else answered.
    if (!detail.empty() && !type.empty()) {
        std::string clean;
        for (char ch : detail.substr(0, 1000)) {
            clean += (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ? ' ' : ch;
        }
        what += ": " + clean;
    }
    return make_error(errc::external_service, what.substr(0, 1500), std::move(params));
}

order parse_order(json::value const& v, std::string url) {
    order o;
    o.url = std::move(url);
    if (!v.is_object()) {
        return o;
    }
    auto const& obj = v.get_object();
    o.status = str(obj, "status");
    o.finalize = str(obj, "finalize");
    o.certificate = str(obj, "certificate");
    if (auto const* a = obj.if_contains("authorizations"); a != nullptr && a->is_array()) {
        for (auto const& u : a->get_array()) {
            if (u.is_string()) {
                o.authorizations.emplace_back(u.get_string());
            }
        }
    }
    if (auto const* e = obj.if_contains("error"); e != nullptr && e->is_object()) {
        o.error_detail = str(e->get_object(), "detail");
    }
    return o;
}

authorization parse_authorization(json::value const& v, std::string url) {
    authorization a;
    a.url = std::move(url);
    if (!v.is_object()) {
        return a;
    }
    auto const& obj = v.get_object();
    a.status = str(obj, "status");
    if (auto const* id = obj.if_contains("identifier"); id != nullptr && id->is_object()) {
        a.identifier = str(id->get_object(), "value");
    }
    if (auto const* w = obj.if_contains("wildcard"); w != nullptr && w->is_bool()) {
        a.wildcard = w->get_bool();
    }
    if (auto const* cs = obj.if_contains("challenges"); cs != nullptr && cs->is_array()) {
        for (auto const& c : cs->get_array()) {
            if (!c.is_object()) {
                continue;
            }
            auto const& co = c.get_object();
            a.challenges.push_back({str(co, "type"), str(co, "url"), str(co, "token"), str(co, "status")});
            if (auto const* e = co.if_contains("error"); e != nullptr && e->is_object()) {
                a.error_detail = str(e->get_object(), "detail");
            }
        }
    }
    return a;
}

net::awaitable<result<directory>> client::load_directory() {
    auto aw = session_->load_directory();
    co_return co_await std::move(aw);
}

net::awaitable<result<std::string>> client::nonce() {
    if (auto n = session_->take_nonce()) {
        co_return std::move(*n);
    }
    auto aw_dir = load_directory();
    auto dir = co_await std::move(aw_dir);
    if (!dir) {
        co_return dir.error();
    }
    net::outbound_request req;
    req.method = "HEAD";
    req.url = dir->new_nonce;
    auto aw = session_->fetch(req, urgent_);
    auto res = co_await std::move(aw);
    if (!res) {
        co_return res.error();
    }
    std::string n = res->header("replay-nonce");
    if (n.empty()) {
        co_return make_error(errc::external_service, "The CA sent no Replay-Nonce", {{"retryable", true}});
    }
    co_return n;
}

net::awaitable<result<client::reply>> client::post(std::string url, std::string payload, bool use_jwk,
                                                   std::string accept) {
    for (int attempt = 0;; ++attempt) {
        auto aw_nonce = nonce();
        auto n = co_await std::move(aw_nonce);
        if (!n) {
            co_return n.error();
        }
        net::outbound_request req;
        req.method = "POST";
        req.url = url;
        req.headers.emplace_back("Content-Type", "application/jose+json");
        if (!accept.empty()) {
            req.headers.emplace_back("Accept", accept);
        }
        req.body = sign(key_pem_, url, *n, use_jwk ? std::string() : kid_, payload);
        auto aw = session_->fetch(req, urgent_);
        auto res = co_await std::move(aw);
        if (!res) {
            co_return res.error();
        }
        if (auto fresh = res->header("replay-nonce"); !fresh.empty()) {
            session_->give_nonce(std::move(fresh));
        }
        retry_after_ = parse_retry_after(res->header("retry-after"));
        if (res->status >= 400) {
            auto err = problem_error(res->status, res->body, retry_after_);
            if (err.params.at("acme_type") == "badNonce" && attempt < 4) {
                continue;  // RFC 8555 §6.5: retry with the fresh nonce from the error response
            }
            bool const limited = err.params.at("acme_type") == "rateLimited" || res->status == 429;
            if (limited) {
                session_->count_rate_limited();
            }
            bool const short_wait =
                retry_after_ > 0 && retry_after_ <= static_cast<int>(session_->limits().max_pause_seconds);
            if (limited && short_wait && attempt < 4) {
                // A rate limit is the account's or the names' (RFC 8555 §6.6), not every user's: only this
                // order waits as asked, then sends the request again. A longer wait ends the attempt
                // (retryable, with retry_after; the worker may fail over to another CA).
                auto aw_wait = net::sleep_for(std::chrono::seconds(retry_after_));
                co_await std::move(aw_wait);
                continue;
            }
            if (res->status == 503 && retry_after_ > 0 && attempt < 4) {
                // The CA as a whole is busy: every order of this instance to it waits (beyond
                // max_pause_seconds, fetch() ends the attempt, retryable).
                session_->pause_for(std::chrono::seconds(retry_after_));
                continue;
            }
            co_return err;
        }
        reply r;
        r.status = res->status;
        r.location = res->header("location");
        r.body = std::move(res->body);
        if (accept.empty() && !r.body.empty()) {
            boost::system::error_code ec;
            r.json = json::parse(r.body, ec);
            if (ec) {
                co_return make_error(errc::external_service,
                                     "The CA answered " + url + " with malformed JSON");
            }
        }
        co_return r;
    }
}

net::awaitable<result<std::string>> client::account(std::string email, std::string eab_kid,
                                                    std::string eab_hmac_key) {
    auto aw_dir = load_directory();
    auto dir = co_await std::move(aw_dir);
    if (!dir) {
        co_return dir.error();
    }
    json::object payload{{"termsOfServiceAgreed", true}};
    if (!email.empty()) {
        payload["contact"] = json::array{json::string("mailto:" + email)};
    }
    if (!eab_kid.empty()) {
        payload["externalAccountBinding"] =
            external_account_binding(key_pem_, eab_kid, eab_hmac_key, dir->new_account);
    } else if (dir->eab_required) {
        co_return make_error(errc::external_service,
                             "This CA requires external account binding: create the account with eab_kid and "
                             "eab_hmac_key");
    }
    auto aw = post(dir->new_account, json::serialize(payload), true);
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    if (r->location.empty()) {
        co_return make_error(errc::external_service, "The CA created the account but sent no Location");
    }
    kid_ = r->location;
    co_return kid_;
}

net::awaitable<result<order>> client::new_order(std::vector<std::string> names, std::string replaces) {
    auto aw_dir = load_directory();
    auto dir = co_await std::move(aw_dir);
    if (!dir) {
        co_return dir.error();
    }
    json::array ids;
    for (auto const& n : names) {
        ids.push_back(json::object{{"type", "dns"}, {"value", n}});
    }
    json::object payload{{"identifiers", std::move(ids)}};
    if (!replaces.empty() && !dir->renewal_info.empty()) {
        payload["replaces"] = replaces;
    }
    auto aw = post(dir->new_order, json::serialize(payload));
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    if (r->location.empty()) {
        co_return make_error(errc::external_service, "The CA created the order but sent no Location");
    }
    co_return parse_order(r->json, r->location);
}

net::awaitable<result<order>> client::get_order(std::string url) {
    auto aw = post(url, "");
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    co_return parse_order(r->json, url);
}

net::awaitable<result<authorization>> client::get_authorization(std::string url) {
    auto aw = post(url, "");
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    co_return parse_authorization(r->json, url);
}

net::awaitable<result<bool>> client::respond(std::string challenge_url) {
    auto aw = post(challenge_url, "{}");
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    co_return true;
}

net::awaitable<result<order>> client::finalize(std::string finalize_url, std::string csr_der) {
    json::object payload{{"csr", base64url(csr_der)}};
    auto aw = post(finalize_url, json::serialize(payload));
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    co_return parse_order(r->json, r->location);
}

net::awaitable<result<std::pair<std::int64_t, std::int64_t>>> client::renewal_info(std::string cert_id) {
    auto aw_dir = load_directory();
    auto dir = co_await std::move(aw_dir);
    if (!dir) {
        co_return dir.error();
    }
    if (dir->renewal_info.empty()) {
        co_return make_error(errc::external_service, "The CA offers no renewalInfo (RFC 9773)");
    }
    net::outbound_request req;
    req.url = dir->renewal_info + (dir->renewal_info.back() == '/' ? "" : "/") + cert_id;
    auto aw = session_->fetch(req, urgent_);
    auto res = co_await std::move(aw);
    if (!res) {
        co_return res.error();
    }
    retry_after_ = parse_retry_after(res->header("retry-after"));
    if (res->status != 200) {
        co_return problem_error(res->status, res->body, retry_after_);
    }
    auto w = parse_renewal_info(res->body);
    if (!w) {
        co_return make_error(errc::external_service, "The CA's renewalInfo is malformed");
    }
    co_return std::pair<std::int64_t, std::int64_t>{w->start, w->end};
}

net::awaitable<result<std::string>> client::download(std::string certificate_url) {
    auto aw = post(certificate_url, "", false, "application/pem-certificate-chain");
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    if (r->body.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        co_return make_error(errc::external_service,
                             "The CA's certificate download holds no PEM certificate");
    }
    co_return r->body;
}

}  // namespace certctrl::acme
