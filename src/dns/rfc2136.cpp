#include "certctrl/dns/rfc2136.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <ldns/ldns.h>
#include <netdb.h>
#include <sys/socket.h>

#include <memory>

namespace certctrl::dns {

namespace {

using resolver_ptr = std::unique_ptr<ldns_resolver, decltype(&ldns_resolver_deep_free)>;
using pkt_ptr = std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)>;
using rr_list_ptr = std::unique_ptr<ldns_rr_list, decltype(&ldns_rr_list_deep_free)>;
using rdf_ptr = std::unique_ptr<ldns_rdf, decltype(&ldns_rdf_deep_free)>;

app_error dns_error(std::string what) {
    return make_error(errc::external_service, std::move(what), {{"retryable", true}});
}

std::string absolute(std::string name) {
    if (name.empty() || name.back() != '.') {
        name += '.';
    }
    return name;
}

// A resolver talking to exactly `server` (resolved here: ldns wants an address).
result<resolver_ptr> resolver_for(
    std::string const& server, unsigned port, std::chrono::seconds timeout,
    std::function<std::optional<std::string>(std::string const&)> const& refuse_address) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(server.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
        return dns_error("DNS server " + server + " does not resolve");
    }
    char addr[NI_MAXHOST] = {};
    int const rc =
        ::getnameinfo(found->ai_addr, found->ai_addrlen, addr, sizeof addr, nullptr, 0, NI_NUMERICHOST);
    bool const v6 = found->ai_family == AF_INET6;
    ::freeaddrinfo(found);
    if (rc != 0) {
        return dns_error("DNS server " + server + " has no usable address");
    }
    // The address checked is the one used (no second lookup).
    if (refuse_address) {
        if (auto why = refuse_address(addr)) {
            return make_error(errc::bad_request,
                              "Refused by the egress policy: DNS server " + server + " resolves to " +
                                  std::string(addr) + " (" + *why +
                                  "); an operator can allow it in egress.allow",
                              {{"retryable", false}});
        }
    }
    resolver_ptr res(ldns_resolver_new(), ldns_resolver_deep_free);
    ldns_rdf* ns = ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, addr);
    if (!res || ns == nullptr || ldns_resolver_push_nameserver(res.get(), ns) != LDNS_STATUS_OK) {
        if (ns != nullptr) {
            ldns_rdf_deep_free(ns);
        }
        return dns_error("DNS resolver setup failed for " + server);
    }
    ldns_rdf_deep_free(ns);  // push_nameserver copies it
    ldns_resolver_set_port(res.get(), static_cast<uint16_t>(port));
    ldns_resolver_set_timeout(res.get(), timeval{static_cast<time_t>(timeout.count()), 0});
    ldns_resolver_set_retry(res.get(), 2);
    ldns_resolver_set_recursive(res.get(), false);
    return res;
}

// The TXT strings in the answer section of `answer` (each record's character-strings joined).
std::vector<std::string> txt_answers(ldns_pkt* answer) {
    std::vector<std::string> out;
    rr_list_ptr txts(ldns_pkt_rr_list_by_type(answer, LDNS_RR_TYPE_TXT, LDNS_SECTION_ANSWER),
                     ldns_rr_list_deep_free);
    if (!txts) {
        return out;
    }
    for (std::size_t i = 0; i < ldns_rr_list_rr_count(txts.get()); ++i) {
        ldns_rr* rr = ldns_rr_list_rr(txts.get(), i);
        std::string joined;
        for (std::size_t j = 0; j < ldns_rr_rd_count(rr); ++j) {
            ldns_rdf* rd = ldns_rr_rdf(rr, j);
            // A character-string: one length byte, then the bytes.
            auto const* data = ldns_rdf_data(rd);
            std::size_t const size = ldns_rdf_size(rd);
            if (size > 0) {
                joined.append(reinterpret_cast<char const*>(data) + 1,
                              std::min<std::size_t>(data[0], size - 1));
            }
        }
        out.push_back(std::move(joined));
    }
    return out;
}

}  // namespace

result<bool> update_txt(update_target const& t, std::string const& fqdn, std::string const& value, bool add) {
    return update_record(t, fqdn, "TXT", "\"" + value + "\"", add);
}

result<bool> update_record(update_target const& t, std::string const& fqdn, std::string const& type,
                           std::string const& rdata, bool add) {
    CERTCTRL_TRY(res, resolver_for(t.server, t.port, t.timeout, t.refuse_address));
    std::string const key = absolute(t.tsig_key_name);
    std::string const alg = absolute(t.tsig_algorithm);
    ldns_resolver_set_tsig_keyname(res.get(), key.c_str());
    ldns_resolver_set_tsig_algorithm(res.get(), alg.c_str());
    ldns_resolver_set_tsig_keydata(res.get(), t.tsig_secret.c_str());

    std::string const text = absolute(fqdn) + " 60 IN " + type + " " + rdata;
    ldns_rr* rr = nullptr;
    if (ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK || rr == nullptr) {
        return make_error(errc::bad_request, "Not a " + type + " record: " + text);
    }
    if (!add) {
        // RFC 2136 §2.5.4: class NONE, TTL 0 deletes exactly this record.
        ldns_rr_set_class(rr, LDNS_RR_CLASS_NONE);
        ldns_rr_set_ttl(rr, 0);
    }
    rr_list_ptr updates(ldns_rr_list_new(), ldns_rr_list_deep_free);
    ldns_rr_list_push_rr(updates.get(), rr);
    ldns_rdf* zone = ldns_dname_new_frm_str(absolute(t.zone).c_str());
    if (zone == nullptr) {
        return make_error(errc::bad_request, "Not a zone name: " + t.zone);
    }
    pkt_ptr pkt(ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, nullptr, updates.get(), nullptr), ldns_pkt_free);
    if (!pkt) {
        ldns_rdf_deep_free(zone);
        return dns_error("Building the DNS update failed");
    }
    if (ldns_update_pkt_tsig_add(pkt.get(), res.get()) != LDNS_STATUS_OK) {
        return make_error(errc::external_service,
                          "Signing the DNS update with TSIG key " + t.tsig_key_name + " failed");
    }
    ldns_pkt* answer_raw = nullptr;
    ldns_status const st = ldns_resolver_send_pkt(&answer_raw, res.get(), pkt.get());
    pkt_ptr answer(answer_raw, ldns_pkt_free);
    std::string const where = t.server + ":" + std::to_string(t.port);
    if (st != LDNS_STATUS_OK || !answer) {
        return dns_error("DNS update to " + where + " failed: " + ldns_get_errorstr_by_id(st));
    }
    ldns_pkt_rcode const rcode = ldns_pkt_get_rcode(answer.get());
    if (rcode != LDNS_RCODE_NOERROR) {
        char* name = ldns_pkt_rcode2str(rcode);
        std::string const rc = name != nullptr ? name : std::to_string(static_cast<int>(rcode));
        free(name);  // NOLINT: allocated by ldns
        return make_error(errc::external_service,
                          "DNS server " + where + " refused the update of " + fqdn + " in zone " + t.zone +
                              ": " + rc +
                              (rc == "NOTAUTH" ? " (check the TSIG key name, algorithm and secret)" : ""));
    }
    return true;
}

namespace {

// The answer of `server` to a query for `type` records of `fqdn`. Errors: bad_request (not a name),
// external_service (no answer).
result<pkt_ptr> query_records(
    std::string const& server, unsigned port, std::string const& fqdn, ldns_rr_type type,
    char const* type_name, std::chrono::seconds timeout, bool recursive,
    std::function<std::optional<std::string>(std::string const&)> const& refuse_address) {
    CERTCTRL_TRY(res, resolver_for(server, port, timeout, refuse_address));
    rdf_ptr name(ldns_dname_new_frm_str(absolute(fqdn).c_str()), ldns_rdf_deep_free);
    if (!name) {
        return make_error(errc::bad_request, "Not a DNS name: " + fqdn);
    }
    pkt_ptr answer(
        ldns_resolver_query(res.get(), name.get(), type, LDNS_RR_CLASS_IN, recursive ? LDNS_RD : 0),
        ldns_pkt_free);
    if (!answer) {
        return dns_error(std::string(type_name) + " query for " + fqdn + " at " + server + " got no answer");
    }
    return answer;
}

}  // namespace

result<std::vector<std::string>> query_txt(
    std::string const& server, unsigned port, std::string const& fqdn, std::chrono::seconds timeout,
    bool recursive, std::function<std::optional<std::string>(std::string const&)> const& refuse_address) {
    CERTCTRL_TRY(answer, query_records(server, port, fqdn, LDNS_RR_TYPE_TXT, "TXT", timeout, recursive,
                                       refuse_address));
    return txt_answers(answer.get());
}

namespace {

// The first field of every `type` record of the answer section, as text: lower-case, without the trailing
// dot.
std::vector<std::string> answers_of(ldns_pkt* answer, ldns_rr_type type) {
    std::vector<std::string> out;
    rr_list_ptr rrs(ldns_pkt_rr_list_by_type(answer, type, LDNS_SECTION_ANSWER), ldns_rr_list_deep_free);
    for (std::size_t i = 0; rrs && i < ldns_rr_list_rr_count(rrs.get()); ++i) {
        ldns_rdf* field = ldns_rr_rdf(ldns_rr_list_rr(rrs.get(), i), 0);
        if (field == nullptr) {
            continue;
        }
        char* text = ldns_rdf2str(field);
        if (text == nullptr) {
            continue;
        }
        std::string t(text);
        free(text);  // NOLINT: allocated by ldns
        while (!t.empty() && t.back() == '.') {
            t.pop_back();
        }
        std::transform(t.begin(), t.end(), t.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        out.push_back(std::move(t));
    }
    return out;
}

}  // namespace

result<std::vector<std::string>> query_cname(std::string const& server, unsigned port,
                                             std::string const& fqdn, std::chrono::seconds timeout,
                                             bool recursive) {
    CERTCTRL_TRY(answer,
                 query_records(server, port, fqdn, LDNS_RR_TYPE_CNAME, "CNAME", timeout, recursive, {}));
    return answers_of(answer.get(), LDNS_RR_TYPE_CNAME);
}

result<std::vector<std::string>> authoritative_servers(std::string const& resolver, unsigned port,
                                                       std::string const& fqdn,
                                                       std::chrono::seconds timeout) {
    std::string name = fqdn;
    while (!name.empty() && name.back() == '.') {
        name.pop_back();
    }
    // The closest enclosing name with NS records is the zone's apex (the record itself has none).
    for (std::string zone = name; zone.find('.') != std::string::npos;
         zone = zone.substr(zone.find('.') + 1)) {
        CERTCTRL_TRY(ns_answer,
                     query_records(resolver, port, zone, LDNS_RR_TYPE_NS, "NS", timeout, true, {}));
        auto const names = answers_of(ns_answer.get(), LDNS_RR_TYPE_NS);
        if (names.empty()) {
            continue;
        }
        std::vector<std::string> addresses;
        for (auto const& ns : names) {
            for (auto [type, type_name] :
                 {std::pair{LDNS_RR_TYPE_A, "A"}, std::pair{LDNS_RR_TYPE_AAAA, "AAAA"}}) {
                auto a = query_records(resolver, port, ns, type, type_name, timeout, true, {});
                if (a) {
                    for (auto& addr : answers_of(a->get(), type)) {
                        if (std::find(addresses.begin(), addresses.end(), addr) == addresses.end()) {
                            addresses.push_back(std::move(addr));
                        }
                    }
                }
            }
        }
        if (addresses.empty()) {
            return dns_error("The name servers of " + zone + " have no addresses");
        }
        return addresses;
    }
    return dns_error("No name servers found for " + fqdn);
}

std::pair<std::string, unsigned> resolver_address(std::string const& spec) {
    std::string host = spec.empty() ? system_resolver() : spec;
    unsigned port = 53;
    if (!host.empty() && host.front() == '[') {
        auto const close = host.find(']');
        if (close != std::string::npos && close + 2 < host.size() && host[close + 1] == ':') {
            port = static_cast<unsigned>(std::stoul(host.substr(close + 2)));
        }
        host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else if (auto colon = host.find(':'); colon != std::string::npos && host.rfind(':') == colon) {
        port = static_cast<unsigned>(std::stoul(host.substr(colon + 1)));
        host.resize(colon);
    }
    return {host, port};
}

result<std::vector<std::string>> txt_answers_of_wire(std::string_view wire) {
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<uint8_t const*>(wire.data()), wire.size()) != LDNS_STATUS_OK ||
        raw == nullptr) {
        return dns_error("Not a DNS message");
    }
    pkt_ptr pkt(raw, ldns_pkt_free);
    return txt_answers(pkt.get());
}

std::string system_resolver() {
    std::ifstream in("/etc/resolv.conf");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key;
        std::string value;
        if (words >> key >> value && key == "nameserver") {
            return value;
        }
    }
    return "127.0.0.1";
}

}  // namespace certctrl::dns
