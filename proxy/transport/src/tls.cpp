// TLS server context.
#include "xks/proxy/transport/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>

namespace xks::proxy {

namespace ssl = boost::asio::ssl;

namespace {

constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kTls13Suites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

// Offered protocols in preference order (ALPN wire format).
constexpr unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned int offered_length, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kAlpn, sizeof kAlpn, offered, offered_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no ALPN agreement: HTTP/1.1 without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string openssl_error() {
  unsigned long code = ERR_get_error();
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// A DNS subjectAltName of the leaf certificate is in the allowed list; or, for a certificate
// without DNS names, its CN (RFC 6125 §6.4.4: the CN is not checked when SANs exist).
bool names_allowed(X509* certificate, const std::vector<std::string>& allowed) {
  auto listed = [&](std::string_view name) {
    return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
  };
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  bool found = false;
  bool has_dns_names = false;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && !found; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS)
      continue;
    has_dns_names = true;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    found = listed({reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                    static_cast<std::size_t>(ASN1_STRING_length(dns))});
  }
  GENERAL_NAMES_free(names);
  if (found || has_dns_names)
    return found;
  X509_NAME* subject = X509_get_subject_name(certificate);
  for (int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); at >= 0;
       at = X509_NAME_get_index_by_NID(subject, NID_commonName, at)) {
    ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
    if (listed({reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                static_cast<std::size_t>(ASN1_STRING_length(cn))})) {
      return true;
    }
  }
  return false;
}

// notAfter of the first certificate in a PEM file, as Unix time.
std::optional<double> certificate_not_after(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr)
    return std::nullopt;
  X509* certificate = PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (certificate == nullptr)
    return std::nullopt;
  std::tm expiry{};
  bool ok = ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &expiry) == 1;
  X509_free(certificate);
  if (!ok)
    return std::nullopt;
  return static_cast<double>(timegm(&expiry));
}

// SHA-256 of what decides which client certificates are accepted: the client CA file's
// bytes and the allowed names. 32 bytes = SSL_MAX_SID_CTX_LENGTH.
tl::expected<std::array<unsigned char, SHA256_DIGEST_LENGTH>, std::string> session_id_context(
    const TlsConfig& config) {
  std::string material = "xks-proxy session context\n";
  if (!config.client_ca.empty()) {
    std::ifstream file(config.client_ca, std::ios::binary);
    if (!file)
      return tl::unexpected("cannot read client CA " + config.client_ca);
    material.append(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    for (const std::string& name : config.client_names) {
      material += '\n';
      material += name;
    }
  }
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest.data());
  return digest;
}

}  // namespace

tl::expected<std::shared_ptr<ssl::context>, std::string> make_server_tls_context(
    const TlsConfig& config) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1) {
    return tl::unexpected("TLS cipher configuration failed: " + openssl_error());
  }
  if (SSL_CTX_use_certificate_chain_file(native, config.certificate_chain.c_str()) != 1) {
    return tl::unexpected("cannot load TLS certificate chain " + config.certificate_chain + ": " +
                          openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(native, config.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return tl::unexpected("cannot load TLS private key " + config.private_key + ": " +
                          openssl_error());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return tl::unexpected("the TLS private key does not match the certificate " +
                          config.certificate_chain);
  }
  // Idle keep-alive connections give their 2 x 16 KiB record buffers back (memory per idle
  // connection is a goal: thousands of KMS connections stay open).
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  // Sessions (and tickets) live an hour; a resumed session's client certificate is checked
  // for expiry when the connection starts (TlsSocket::peer_certificate_still_valid).
  SSL_CTX_set_timeout(native, 3600);
  // A resumed session skips client verification, so OpenSSL resumes (with client
  // verification on, at all) only sessions made under the same session id context: this
  // one names the client trust settings, so a session made under other settings is not
  // resumed but met with a full handshake.
  auto sid_context = session_id_context(config);
  if (!sid_context) {
    return tl::unexpected(sid_context.error());
  }
  if (SSL_CTX_set_session_id_context(native, sid_context->data(),
                                     static_cast<unsigned>(sid_context->size())) != 1) {
    return tl::unexpected("TLS session id context: " + openssl_error());
  }

  if (!config.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(native, config.client_ca.c_str(), nullptr) != 1) {
      return tl::unexpected("cannot load client CA " + config.client_ca + ": " + openssl_error());
    }
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    std::vector<std::string> allowed = config.client_names;
    context->set_verify_callback([allowed](bool preverified, ssl::verify_context& verify) {
      X509_STORE_CTX* store = verify.native_handle();
      bool accepted =
          preverified && (X509_STORE_CTX_get_error_depth(store) != 0 ||
                          names_allowed(X509_STORE_CTX_get_current_cert(store), allowed));
      // Every rejection (unknown CA, expired, wrong name) ends the handshake with the
      // handshake_failure alert, as KMS's conformance client expects, rather than OpenSSL's
      // more specific alerts.
      if (!accepted)
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return accepted;
    });
  }
  return context;
}

metrics::Gauge& register_certificate_expiry(metrics::Registry& registry) {
  return registry
      .gauge("xks_tls_certificate_expiry_timestamp_seconds",
             "notAfter of the serving certificate (Unix time).")
      .labels({});
}

void set_certificate_expiry(metrics::Gauge& expiry, const TlsConfig& config) {
  if (auto not_after = certificate_not_after(config.certificate_chain))
    expiry.set(*not_after);
}

}  // namespace xks::proxy
