#include "certctrl/handlers/rendered_certificates.hpp"

#include "common.hpp"

namespace certctrl::handlers {

rendered_certificates::item_ptr rendered_certificates::find(repo::cert_version const& v) const {
    std::lock_guard lk(mu_);
    auto it = items_.find(v.id);
    if (it == items_.end() || it->second->row_version != v.row_version) {
        ++misses_;
        return nullptr;
    }
    ++hits_;
    return it->second;
}

rendered_certificates::item_ptr rendered_certificates::put(domain::certificate const& c) {
    auto it = std::make_shared<item>();
    it->row_version = c.row_version;
    it->has_certificate = c.has_certificate;
    it->not_after = c.not_after;
    {
        http::json_writer w(it->head);
        detail::write_cert_head(w, c);
    }
    {
        http::json_writer w(it->tail);
        detail::write_cert_tail(w, c);
    }
    item_ptr out = it;
    std::lock_guard lk(mu_);
    if (items_.size() >= capacity_ && !items_.contains(c.id)) {
        items_.clear();  // texts in use stay alive with the pages that hold them
    }
    auto& slot = items_[c.id];
    if (!slot || slot->row_version < out->row_version) {  // a slower reader of an older row keeps out
        slot = out;
    }
    return out;
}

void rendered_certificates::append(std::string& out, item const& it, std::int64_t now) {
    out += '{';
    out += it.head;
    out += ",\"status\":\"";
    out += detail::cert_status(it.has_certificate, it.not_after, now);
    out += "\",";
    out += it.tail;
    out += '}';
}

std::size_t rendered_certificates::size() const {
    std::lock_guard lk(mu_);
    return items_.size();
}

}  // namespace certctrl::handlers
