#include "certctrl/acme/ari.hpp"

#include "certctrl/acme/jws.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <boost/json.hpp>

#include <chrono>
#include <memory>

namespace certctrl::acme {

std::string ari_cert_id(std::string_view aki_key_id, std::string_view serial_octets) {
    return base64url(aki_key_id) + "." + base64url(serial_octets);
}

std::optional<std::string> ari_cert_id_of(std::string const& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                  BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
    if (!cert) {
        return std::nullopt;
    }
    ASN1_OCTET_STRING const* kid = X509_get0_authority_key_id(cert.get());
    ASN1_INTEGER const* serial = X509_get0_serialNumber(cert.get());
    if (kid == nullptr || serial == nullptr) {
        return std::nullopt;
    }
    // DER content octets of the INTEGER: i2d gives tag, length, content; the content is what ARI wants.
    int const len = i2d_ASN1_INTEGER(serial, nullptr);
    if (len <= 2) {
        return std::nullopt;
    }
    std::string der(static_cast<std::size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_ASN1_INTEGER(serial, &p);
    std::size_t header = 2;
    if (static_cast<unsigned char>(der[1]) & 0x80) {
        header += static_cast<unsigned char>(der[1]) & 0x7f;
    }
    return ari_cert_id(std::string_view(reinterpret_cast<char const*>(ASN1_STRING_get0_data(kid)),
                                        static_cast<std::size_t>(ASN1_STRING_length(kid))),
                       std::string_view(der).substr(header));
}

std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
    auto num = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
        if (pos + n > s.size()) {
            return std::nullopt;
        }
        int v = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') {
                return std::nullopt;
            }
            v = v * 10 + (s[i] - '0');
        }
        return v;
    };
    auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
    if (!y || !mo || !d || !h || !mi || !se || s.size() < 20 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') {
        return std::nullopt;
    }
    std::size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            ++pos;
        }
    }
    std::int64_t offset = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
        offset = 0;
    } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
        auto oh = num(pos + 1, 2), om = num(pos + 4, 2);
        if (!oh || !om) {
            return std::nullopt;
        }
        offset = (s[pos] == '+' ? 1 : -1) * (*oh * 3600 + *om * 60);
    } else {
        return std::nullopt;
    }
    std::chrono::year_month_day const ymd{std::chrono::year{*y},
                                          std::chrono::month{static_cast<unsigned>(*mo)},
                                          std::chrono::day{static_cast<unsigned>(*d)}};
    if (!ymd.ok() || *h > 23 || *mi > 59 || *se > 60) {
        return std::nullopt;
    }
    std::int64_t const days = std::chrono::sys_days{ymd}.time_since_epoch().count();
    return days * 86400 + *h * 3600 + *mi * 60 + *se - offset;
}

std::optional<renewal_window> parse_renewal_info(std::string const& body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) {
        return std::nullopt;
    }
    auto const* w = v.get_object().if_contains("suggestedWindow");
    if (w == nullptr || !w->is_object()) {
        return std::nullopt;
    }
    auto const* start = w->get_object().if_contains("start");
    auto const* end = w->get_object().if_contains("end");
    if (start == nullptr || end == nullptr || !start->is_string() || !end->is_string()) {
        return std::nullopt;
    }
    auto s = parse_rfc3339(start->get_string());
    auto e = parse_rfc3339(end->get_string());
    if (!s || !e || *e <= *s) {
        return std::nullopt;
    }
    return renewal_window{*s, *e};
}

}  // namespace certctrl::acme
