#include "certctrl/service/device_keys.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "certctrl/service/issuance.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace certctrl::service {

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::int64_t device_signals::emit(repo::work& w, std::int64_t device_id, std::string const& type,
                                  boost::json::object const& ref) const {
    r_.devices->lock(w, {device_id});
    std::int64_t const id = r_.feed->append(w, device_id, type, ref, now_ms());
    r_.feed->trim(w, device_id, keep_);
    return id;
}

void device_signals::emit_all(repo::work& w, std::vector<std::int64_t> const& devices,
                              std::string const& type, boost::json::object const& ref) const {
    r_.devices->lock(w, devices);
    for (auto d : devices) {
        emit(w, d, type, ref);
    }
}

boost::json::object device_keys::cert_updated_ref(std::int64_t cert_id, wrap_state s,
                                                  std::string const& keyfp, std::string const& serial) {
    boost::json::object ref;
    ref["cert_id"] = cert_id;
    if (s == wrap_state::wrapped) {
        ref["wrap_ready"] = true;
        ref["wrap_alg"] = "x25519";
        ref["device_keyfp_b64"] = base64_encode(keyfp);
    }
    if (!serial.empty()) {
        ref["serial"] = serial;
    }
    return ref;
}

wrap_state device_keys::wrap(repo::work& w, std::int64_t cert_id, std::int64_t device_id,
                             std::optional<std::string> const& data_key) const {
    auto in = r_.assignments->wrap_inputs_of(w, cert_id, device_id);
    if (!in) {
        return wrap_state::not_issued;
    }
    wrap_state state = wrap_state::pending;
    std::string keyfp;
    if (in->policy == "MASTER_ONLY") {
        state = wrap_state::master_only;
        r_.assignments->store_wrap(w, cert_id, device_id, std::nullopt, std::nullopt);
    } else if (!in->issued) {
        state = wrap_state::not_issued;
        r_.assignments->store_wrap(w, cert_id, device_id, std::nullopt, std::nullopt);
    } else {
        std::optional<std::string> key = data_key;
        if (!key && in->master) {
            auto opened = keys_.unwrap(*in->master, issuance_service::data_key_context(cert_id));
            if (opened) {
                key = std::move(*opened);
            } else {
                spdlog::error("certificate {}: the master-wrapped data key does not open: {}", cert_id,
                              opened.error().what);
            }
        }
        std::optional<std::string> sealed;
        if (key && in->device_key) {
            try {
                sealed = crypto::seal_to(*key, *in->device_key);
            } catch (std::exception const& e) {
                // One device's unusable key never fails the issuance or assignment sealing for the others.
                spdlog::warn("certificate {}: sealing to device {} failed ({}); left pending", cert_id,
                             device_id, e.what());
            }
        }
        if (sealed) {
            keyfp = crypto::blake2b_256(*in->device_key);
            r_.assignments->store_wrap(w, cert_id, device_id, std::move(*sealed), keyfp);
            state = wrap_state::wrapped;
        } else if (key && in->device_key) {
            r_.assignments->store_wrap(w, cert_id, device_id, repo::wrap_pending_sentinel(), std::nullopt);
        } else {
            r_.assignments->store_wrap(w, cert_id, device_id, repo::wrap_pending_sentinel(), std::nullopt);
            if (!in->master && in->device_key) {
                // No master copy to seal from (DEVICE_REQUIRED): a new key is issued for every device holding
                // the certificate (agent contract 5.2). An issuance already in flight covers it.
                r_.issuance->insert_if_idle(w, in->user_id, cert_id, "renew", unix_now());
            }
        }
    }
    signals_.emit(w, device_id, "cert.updated", cert_updated_ref(cert_id, state, keyfp, in->serial));
    if (state == wrap_state::wrapped && in->was_pending) {
        // The contract's optional signal for a pending wrap that became real (after a 202 assignment).
        signals_.emit(w, device_id, "cert.wrap_ready", boost::json::object{{"cert_id", cert_id}});
    }
    return state;
}

void device_keys::wrap_all(repo::work& w, std::int64_t cert_id, std::vector<std::int64_t> const& devices,
                           std::string const& data_key) const {
    if (devices.empty()) {
        return;
    }
    r_.devices->lock(w, devices);
    for (auto device_id : devices) {
        wrap(w, cert_id, device_id, data_key);
    }
}

}  // namespace certctrl::service
