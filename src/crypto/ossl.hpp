#pragma once
// OpenSSL handles and helpers shared by the X.509 sources (internal to certctrl_crypto).

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <climits>
#include <memory>
#include <stdexcept>
#include <string>

namespace certctrl::crypto::ossl {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using name_ptr = std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)>;
using bn_ptr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using bc_ptr = std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)>;
using req_ptr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;
using gens_ptr = std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)>;
using p8_ptr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)>;
using p12_ptr = std::unique_ptr<PKCS12, decltype(&PKCS12_free)>;
using store_ptr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;

inline void free_x509_stack(STACK_OF(X509) * s) {
    sk_X509_pop_free(s, X509_free);
}
inline void free_extension_stack(STACK_OF(X509_EXTENSION) * s) {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), decltype(&free_x509_stack)>;
using ext_stack_ptr = std::unique_ptr<STACK_OF(X509_EXTENSION), decltype(&free_extension_stack)>;

[[noreturn]] inline void fail(char const* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("X.509 operation failed: ") + what);
}

inline bio_ptr read_bio(std::string const& text) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
        return bio_ptr(nullptr, BIO_free);
    }
    return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
}

inline std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long const len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || data == nullptr) {
        return {};
    }
    return std::string(data, static_cast<std::size_t>(len));
}

/// Never asks for a pass phrase (OpenSSL would prompt on the terminal without a callback): encrypted keys
/// simply do not parse.
inline int no_pass_phrase(char*, int, int, void*) {
    return -1;
}

/// The first private key in a PEM text, or null.
inline pkey_ptr read_private_key(std::string const& pem) {
    bio_ptr bio = read_bio(pem);
    pkey_ptr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_pass_phrase, nullptr) : nullptr,
                 EVP_PKEY_free);
    ERR_clear_error();
    return key;
}

/// The first certificate in a PEM text, or null.
inline x509_ptr read_certificate(std::string const& pem) {
    bio_ptr bio = read_bio(pem);
    x509_ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
    ERR_clear_error();
    return cert;
}

inline std::string pem_of(X509* cert) {
    bio_ptr pem(BIO_new(BIO_s_mem()), BIO_free);
    if (!pem || PEM_write_bio_X509(pem.get(), cert) != 1) {
        fail("PEM encoding");
    }
    return bio_text(pem.get());
}

template <typename T>
std::string der_of(T const* object, int (*i2d)(T const*, unsigned char**), char const* what) {
    int const len = i2d(object, nullptr);
    if (len <= 0) {
        fail(what);
    }
    std::string out(static_cast<std::size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    if (i2d(object, &p) != len) {
        fail(what);
    }
    return out;
}

}  // namespace certctrl::crypto::ossl
