// PEM and DER conversions, PKCS#12 bundles and chain verification.
#include "certctrl/crypto/x509.hpp"

#include "ossl.hpp"

#include <cstring>
#include <string_view>

namespace certctrl::crypto {

using namespace ossl;

std::string private_key_der(std::string const& pem) {
    pkey_ptr key = read_private_key(pem);
    if (!key) {
        throw std::invalid_argument("private key does not parse");
    }
    p8_ptr p8(EVP_PKEY2PKCS8(key.get()), PKCS8_PRIV_KEY_INFO_free);
    if (!p8) {
        fail("PKCS#8 conversion");
    }
    return der_of<PKCS8_PRIV_KEY_INFO>(p8.get(), i2d_PKCS8_PRIV_KEY_INFO, "PKCS#8 encoding");
}

std::string private_key_pem_from_der(std::string const& der) {
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        throw std::invalid_argument("private key DER is empty or too large");
    }
    auto const* p = reinterpret_cast<unsigned char const*>(der.data());
    auto const* const end = p + der.size();
    pkey_ptr key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())), EVP_PKEY_free);
    ERR_clear_error();
    if (!key || p != end) {
        throw std::invalid_argument("private key DER does not parse");
    }
    bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        fail("private key PEM encoding");
    }
    return bio_text(bio.get());
}

std::string certificate_der(std::string const& pem) {
    x509_ptr cert = read_certificate(pem);
    if (!cert) {
        throw std::invalid_argument("certificate does not parse");
    }
    return der_of<X509>(cert.get(), i2d_X509, "certificate encoding");
}

std::vector<std::string> split_certificates(std::string const& pem) {
    static constexpr std::string_view begin_line = "-----BEGIN CERTIFICATE-----";
    static constexpr std::string_view end_line = "-----END CERTIFICATE-----";
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (true) {
        std::size_t begin = pem.find(begin_line, pos);
        if (begin == std::string::npos) {
            break;
        }
        std::size_t const end = pem.find(end_line, begin + begin_line.size());
        if (end == std::string::npos) {
            break;
        }
        // A BEGIN without its END followed by a complete block: keep the complete one.
        for (std::size_t next = pem.find(begin_line, begin + begin_line.size());
             next != std::string::npos && next < end; next = pem.find(begin_line, next + begin_line.size())) {
            begin = next;
        }
        std::size_t const stop = end + end_line.size();
        out.push_back(pem.substr(begin, stop - begin) + "\n");
        pos = stop;
    }
    return out;
}

bool key_matches_certificate(std::string const& key_pem, std::string const& cert_pem) {
    pkey_ptr key = read_private_key(key_pem);
    x509_ptr cert = read_certificate(cert_pem);
    if (!key || !cert) {
        return false;
    }
    EVP_PKEY const* cert_key = X509_get0_pubkey(cert.get());
    bool const matches = cert_key != nullptr && EVP_PKEY_eq(cert_key, key.get()) == 1;
    ERR_clear_error();
    return matches;
}

std::string make_pkcs12(std::string const& key_pem, std::string const& chain_pem, std::string const& password,
                        std::string const& friendly_name) {
    if (password.find('\0') != std::string::npos || friendly_name.find('\0') != std::string::npos) {
        throw std::runtime_error("PKCS#12 password and friendly name must not contain NUL characters");
    }
    pkey_ptr key = read_private_key(key_pem);
    if (!key) {
        throw std::runtime_error("PKCS#12: private key does not parse");
    }
    std::vector<std::string> const blocks = split_certificates(chain_pem);
    x509_ptr leaf = blocks.empty() ? x509_ptr(nullptr, X509_free) : read_certificate(blocks.front());
    if (!leaf) {
        throw std::runtime_error("PKCS#12: no leaf certificate");
    }
    EVP_PKEY const* leaf_key = X509_get0_pubkey(leaf.get());
    bool const matches = leaf_key != nullptr && EVP_PKEY_eq(leaf_key, key.get()) == 1;
    ERR_clear_error();
    if (!matches) {
        throw std::runtime_error("PKCS#12: private key does not match the leaf certificate");
    }
    x509_stack_ptr cas(sk_X509_new_null(), free_x509_stack);
    if (!cas) {
        fail("allocation");
    }
    for (std::size_t i = 1; i < blocks.size(); ++i) {
        x509_ptr ca = read_certificate(blocks[i]);
        if (!ca) {
            throw std::runtime_error("PKCS#12: chain certificate " + std::to_string(i + 1) +
                                     " does not parse");
        }
        if (sk_X509_push(cas.get(), ca.get()) <= 0) {
            fail("allocation");
        }
        ca.release();  // owned by the stack now
    }
    // No MAC from PKCS12_create (mac_iter -1): HMAC-SHA-256 is set explicitly below instead of relying on
    // the library default (SHA-1 before OpenSSL 3.0).
    p12_ptr p12(PKCS12_create(password.c_str(), friendly_name.empty() ? nullptr : friendly_name.c_str(),
                              key.get(), leaf.get(), cas.get(), NID_aes_256_cbc, NID_aes_256_cbc, 0, -1, 0),
                PKCS12_free);
    if (!p12) {
        fail("PKCS#12 creation");
    }
    if (PKCS12_set_mac(p12.get(), password.c_str(), -1, nullptr, 0, PKCS12_DEFAULT_ITER, EVP_sha256()) != 1) {
        fail("PKCS#12 MAC");
    }
    return der_of<PKCS12>(p12.get(), i2d_PKCS12, "PKCS#12 encoding");
}

std::string verify_chain(std::string const& leaf_and_chain_pem, std::string const& trusted_root_pem) {
    std::vector<std::string> const chain_blocks = split_certificates(leaf_and_chain_pem);
    std::vector<std::string> const root_blocks = split_certificates(trusted_root_pem);
    if (chain_blocks.empty()) {
        return "no certificate to verify";
    }
    if (root_blocks.empty()) {
        return "no trusted root certificate";
    }
    x509_ptr leaf = read_certificate(chain_blocks.front());
    if (!leaf) {
        return "the leaf certificate does not parse";
    }
    x509_stack_ptr untrusted(sk_X509_new_null(), free_x509_stack);
    store_ptr store(X509_STORE_new(), X509_STORE_free);
    store_ctx_ptr ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    if (!untrusted || !store || !ctx) {
        fail("allocation");
    }
    for (std::size_t i = 1; i < chain_blocks.size(); ++i) {
        x509_ptr cert = read_certificate(chain_blocks[i]);
        if (!cert) {
            return "chain certificate " + std::to_string(i + 1) + " does not parse";
        }
        if (sk_X509_push(untrusted.get(), cert.get()) <= 0) {
            fail("allocation");
        }
        cert.release();  // owned by the stack now
    }
    for (std::size_t i = 0; i < root_blocks.size(); ++i) {
        x509_ptr root = read_certificate(root_blocks[i]);
        if (!root) {
            return "trusted root certificate " + std::to_string(i + 1) + " does not parse";
        }
        if (X509_STORE_add_cert(store.get(), root.get()) != 1) {  // takes its own reference
            fail("trust store");
        }
    }
    if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1 ||
        X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
        fail("verification setup");
    }
    int const ok = X509_verify_cert(ctx.get());
    int const error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (ok == 1) {
        return {};
    }
    if (error == X509_V_OK) {
        return "certificate verification failed";
    }
    return X509_verify_cert_error_string(error);
}

}  // namespace certctrl::crypto
