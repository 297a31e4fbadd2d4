// The connection probe: each step as KMS takes it, judged as KMS would.
#include "probe.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "connection.h"
#include "workload.h"

namespace xks::load {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// What KMS offers (the XKS spec's transport requirement): TLS 1.2 or 1.3 and these suites.
constexpr char kKmsTls12Ciphers[] = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384";
constexpr char kKmsTls13Suites[] = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr int kCertificateWarningDays = 21;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string format_milliseconds(double milliseconds) {
  std::ostringstream text;
  text.precision(milliseconds < 10 ? 2 : 0);
  text << std::fixed << milliseconds << " ms";
  return text.str();
}

// Runs the asynchronous operation `start` begins until it completes or `timeout` passes; then
// the socket is closed, which ends the operation with an error.
error_code run_within(net::io_context& io, tcp::socket& socket, Clock::duration timeout,
                      const std::function<void(std::function<void(error_code)>)>& start) {
  error_code result;
  bool finished = false, timed_out = false;
  net::steady_timer timer(io, timeout);
  timer.async_wait([&](error_code error) {
    // The operation may have finished while this handler was already queued.
    if (!error && !finished) {
      timed_out = true;
      error_code ignored;
      socket.close(ignored);
    }
  });
  start([&](error_code error) {
    finished = true;
    result = error;
    timer.cancel();
  });
  io.restart();
  io.run();
  return timed_out ? error_code(net::error::timed_out) : result;
}

// The names a certificate is for: its DNS and IP subject alternative names.
std::string certificate_names(X509* certificate) {
  std::string names;
  auto* alternatives = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; alternatives != nullptr && i < sk_GENERAL_NAME_num(alternatives); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(alternatives, i);
    std::string text;
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      text.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                  static_cast<std::size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      net::ip::address address;
      if (ASN1_STRING_length(ip) == 4) {
        net::ip::address_v4::bytes_type bytes;
        std::copy_n(ASN1_STRING_get0_data(ip), 4, bytes.begin());
        address = net::ip::address_v4(bytes);
      } else if (ASN1_STRING_length(ip) == 16) {
        net::ip::address_v6::bytes_type bytes;
        std::copy_n(ASN1_STRING_get0_data(ip), 16, bytes.begin());
        address = net::ip::address_v6(bytes);
      }
      text = address.to_string();
    }
    if (!text.empty())
      names += (names.empty() ? "" : ", ") + text;
  }
  GENERAL_NAMES_free(alternatives);
  return names.empty() ? "no subject alternative name" : names;
}

std::string issuer_name(X509* certificate) {
  char name[256];
  X509_NAME_oneline(X509_get_issuer_name(certificate), name, sizeof name);
  return name;
}

// Whole days from now to the certificate's notAfter (negative once expired).
int days_left(X509* certificate) {
  int days = 0, seconds = 0;
  ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(certificate));
  return days;
}

bool untrusted_issuer(long verify_result) {
  return verify_result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
         verify_result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
         verify_result == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
         verify_result == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
         verify_result == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

// Whether the server refused the TLS client (no certificate, or one it does not accept): with
// TLS 1.3 that alert comes after the handshake, with the first answer. A handshake-failure
// alert means that only when the server asked for a certificate (`certificate_requested`):
// otherwise it is a version or cipher suite KMS does not offer.
bool client_certificate_refused(const error_code& error, bool certificate_requested) {
  if (error.category() != net::error::get_ssl_category())
    return false;
  int reason = ERR_GET_REASON(static_cast<unsigned long>(error.value()));
  if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
    return true;
  return certificate_requested &&
         (reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE || reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
          reason == SSL_R_TLSV1_ALERT_ACCESS_DENIED ||
          reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
}

// OpenSSL's message callback: notes a CertificateRequest from the server in the bool its
// argument points to.
void note_certificate_request(int write_p, int, int content_type, const void* buffer,
                              std::size_t length, SSL*, void* requested) {
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && length > 0 &&
      static_cast<const unsigned char*>(buffer)[0] == SSL3_MT_CERTIFICATE_REQUEST) {
    *static_cast<bool*>(requested) = true;
  }
}

// A string member of a JSON object, or nothing.
std::optional<std::string> string_member(const json::object& object, std::string_view name) {
  auto it = object.find(name);
  if (it == object.end() || !it->value().is_string())
    return std::nullopt;
  return std::string(it->value().get_string());
}

struct Answer {
  error_code error;
  unsigned status = 0;
  std::string content_type;
  std::string body;
  double milliseconds = 0;
  std::string error_name;     // errorName of an error answer, when it has one
  std::string error_message;  // errorMessage, likewise
};

class Prober {
 public:
  Prober(const ClientOptions& options, const std::vector<std::string>& key_ids,
         std::chrono::milliseconds budget)
      : options_(options),
        key_ids_(key_ids),
        budget_(budget),
        mix_(make_mix()),
        factory_(options.target, mix_, nullptr, std::random_device{}()),
        timeout_(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(options.timeout_seconds))) {
    report_.target =
        "https://" + options.target.authority() + options.target.uri_prefix + "/kms/xks/v1";
  }

  ProbeReport run() {
    if (resolve() && connect_tcp() && handshake() && health()) {
      for (const std::string& key_id : key_ids_)
        probe_key(key_id);
    }
    return std::move(report_);
  }

 private:
  WorkloadMix make_mix() const {
    WorkloadMix mix;
    mix.plaintext_bytes = 32;
    mix.aad_bytes = 16;
    return mix;
  }

  ProbeCheck& add(std::string name, CheckResult result, double milliseconds, std::string detail) {
    report_.checks.push_back(
        {std::move(name), result, milliseconds, std::move(detail), "", "", ""});
    return report_.checks.back();
  }

  void fail(ProbeCheck& check, std::string kms_error, std::string cause, std::string fix) {
    check.result = CheckResult::kFailed;
    check.kms_error = std::move(kms_error);
    check.cause = std::move(cause);
    check.fix = std::move(fix);
  }

  bool resolve() {
    auto start = Clock::now();
    tcp::resolver resolver(io_);
    error_code error;
    endpoints_ = resolver.resolve(options_.target.host, options_.target.port, error);
    ProbeCheck& check = add("DNS", CheckResult::kOk, milliseconds_since(start), "");
    if (error) {
      fail(check, "XKS_PROXY_NOT_REACHABLE",
           "cannot resolve " + options_.target.host + ": " + error.message(),
           "the host of XksProxyUriEndpoint must resolve where KMS runs (a public DNS name, or "
           "the private DNS name of the VPC endpoint service)");
      return false;
    }
    std::string addresses;
    for (const auto& entry : endpoints_)
      addresses += (addresses.empty() ? "" : ", ") + entry.endpoint().address().to_string();
    check.detail = options_.target.host + " -> " + addresses;
    return true;
  }

  // A fresh TCP connection; the TLS stream is made on it by handshake().
  error_code open_socket(tcp::endpoint& connected) {
    socket_ = std::make_unique<tcp::socket>(io_);
    return run_within(io_, *socket_, timeout_, [&](auto done) {
      net::async_connect(*socket_, endpoints_,
                         [&, done](error_code error, const tcp::endpoint& endpoint) {
                           connected = endpoint;
                           done(error);
                         });
    });
  }

  bool connect_tcp() {
    auto start = Clock::now();
    tcp::endpoint connected;
    error_code error = open_socket(connected);
    ProbeCheck& check = add("TCP", CheckResult::kOk, milliseconds_since(start), "");
    if (error) {
      fail(check, "XKS_PROXY_NOT_REACHABLE",
           "cannot connect to port " + options_.target.port + ": " + error.message(),
           "the proxy must listen on the port of XksProxyUriEndpoint (443 unless it names one), "
           "and firewalls, security groups and the load balancer must let KMS through");
      return false;
    }
    check.detail = "connected to " + connected.address().to_string() + " port " +
                   std::to_string(connected.port());
    return true;
  }

  // A TLS context offering what KMS offers, trusting `ca_file` or (empty) the system's store.
  std::unique_ptr<net::ssl::context> kms_tls_context(const std::string& ca_file) const {
    auto tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
    SSL_CTX* native = tls->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(native, kKmsTls12Ciphers);
    SSL_CTX_set_ciphersuites(native, kKmsTls13Suites);
    if (ca_file.empty())
      tls->set_default_verify_paths();
    else
      tls->load_verify_file(ca_file);
    tls->set_verify_mode(net::ssl::verify_peer);
    if (!options_.client_certificate.empty()) {
      tls->use_certificate_chain_file(options_.client_certificate);
      tls->use_private_key_file(options_.client_key, net::ssl::context::pem);
    }
    static constexpr unsigned char kHttp1[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(native, kHttp1, sizeof kHttp1 - 1);
    return tls;
  }

  struct Handshake {
    error_code error;
    long verify_result = X509_V_OK;
    double milliseconds = 0;
  };

  // TLS on the open socket with `tls`, checking the name as KMS does.
  Handshake tls_handshake(net::ssl::context& tls) {
    stream_ = std::make_unique<TlsStream>(std::move(*socket_), tls);
    SSL* ssl = stream_->native_handle();
    expect_server_name(ssl, options_.target.host);
    // The leaf certificate's names, kept for the report: after a failed verification OpenSSL
    // no longer gives the peer's certificate.
    leaf_names_.clear();
    certificate_requested_ = false;
    SSL_set_msg_callback(ssl, note_certificate_request);
    SSL_set_msg_callback_arg(ssl, &certificate_requested_);
    stream_->set_verify_callback([this](bool preverified, net::ssl::verify_context& context) {
      X509_STORE_CTX* store = context.native_handle();
      if (X509_STORE_CTX_get_error_depth(store) == 0 && leaf_names_.empty())
        leaf_names_ = certificate_names(X509_STORE_CTX_get_current_cert(store));
      return preverified;
    });
    auto start = Clock::now();
    Handshake result;
    result.error = run_within(io_, stream_->next_layer(), timeout_, [&](auto done) {
      stream_->async_handshake(net::ssl::stream_base::client, done);
    });
    result.milliseconds = milliseconds_since(start);
    result.verify_result = SSL_get_verify_result(ssl);
    return result;
  }

  bool handshake() {
    std::unique_ptr<net::ssl::context> tls;
    try {
      tls = kms_tls_context("");
      if (!options_.ca_file.empty())
        private_tls_ = kms_tls_context(options_.ca_file);
    } catch (const boost::system::system_error& error) {
      ProbeCheck& check = add("TLS", CheckResult::kFailed, 0, "");
      fail(check, "", std::string("the probe's own TLS files: ") + error.what(),
           "check --cacert, --client-cert and --client-key");
      return false;
    }
    Handshake result = tls_handshake(*tls);
    bool private_ca = false;
    if (result.error && untrusted_issuer(result.verify_result) && private_tls_) {
      // Trusted only through --cacert: go on with it, and say what KMS will do.
      tcp::endpoint ignored;
      if (!open_socket(ignored)) {
        result = tls_handshake(*private_tls_);
        private_ca = !result.error;
      }
    }
    ProbeCheck& check = add("TLS", CheckResult::kOk, result.milliseconds, "");
    if (result.error) {
      explain_handshake_failure(check, result);
      return false;
    }
    trusted_tls_ = private_ca ? std::move(private_tls_) : std::move(tls);
    SSL* ssl = stream_->native_handle();
    X509* certificate = SSL_get0_peer_certificate(ssl);
    int days = days_left(certificate);
    check.detail = std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl) +
                   "; certificate for " + certificate_names(certificate) + " from " +
                   issuer_name(certificate) + ", " + std::to_string(days) + " days left";
    if (private_ca) {
      check.result = CheckResult::kWarning;
      check.kms_error = "XKS_PROXY_INVALID_TLS_CONFIGURATION";
      check.cause =
          "the certificate verifies only with --cacert: KMS trusts public certificate "
          "authorities only";
      check.fix =
          "before connecting KMS, serve a certificate from a public CA for " + options_.target.host;
    } else if (days < kCertificateWarningDays) {
      check.result = CheckResult::kWarning;
      check.cause = "the certificate expires in " + std::to_string(days) + " days";
      check.fix = "renew it; the proxy reads the new one on reload";
    }
    return true;
  }

  void explain_handshake_failure(ProbeCheck& check, const Handshake& result) {
    std::string fix_trust =
        "serve a certificate for " + options_.target.host +
        " from a public certificate authority (KMS trusts no other), with its whole chain";
    if (result.error == net::error::timed_out) {
      fail(check, "XKS_PROXY_TIMED_OUT", "no TLS handshake within the timeout",
           "something accepts TCP on this port but does not speak TLS (a TLS-terminating load "
           "balancer should forward TCP to the proxy instead)");
    } else if (result.verify_result == X509_V_ERR_HOSTNAME_MISMATCH ||
               result.verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION",
           "the certificate is for " + leaf_names_ + ", not " + options_.target.host,
           "serve a certificate whose subject alternative names include " + options_.target.host +
               " (the host of XksProxyUriEndpoint)");
    } else if (result.verify_result == X509_V_ERR_CERT_HAS_EXPIRED) {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION", "the certificate has expired",
           "renew it; the proxy reads the new one on reload");
    } else if (result.verify_result == X509_V_ERR_CERT_NOT_YET_VALID) {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION", "the certificate is not valid yet",
           "check the clocks of the proxy's host and of the CA");
    } else if (untrusted_issuer(result.verify_result)) {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION",
           std::string("the certificate is not signed by a CA of the system's trust store (") +
               X509_verify_cert_error_string(result.verify_result) + ")",
           fix_trust + "; to check the rest of a test setup, give its CA with --cacert");
    } else if (result.verify_result != X509_V_OK) {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION",
           std::string("the certificate does not verify: ") +
               X509_verify_cert_error_string(result.verify_result),
           fix_trust);
    } else if (client_certificate_refused(result.error, certificate_requested_)) {
      explain_client_refusal(check, result.error);
    } else {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION",
           "the handshake failed: " + result.error.message(),
           "the proxy must accept TLS 1.2 or 1.3 with one of the suites KMS offers "
           "(TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, ECDHE-RSA-AES256-GCM-SHA384, "
           "ECDHE-ECDSA-AES256-GCM-SHA384); with mTLS, give --client-cert and --client-key");
    }
  }

  // mTLS: the proxy refused the probe's client certificate, or wanted one.
  void explain_client_refusal(ProbeCheck& check, const error_code& error) {
    if (options_.client_certificate.empty()) {
      fail(check, "", "the proxy requires a TLS client certificate (mTLS): " + error.message(),
           "give the probe one the proxy accepts with --client-cert and --client-key (KMS "
           "presents its own)");
    } else {
      fail(check, "XKS_PROXY_INVALID_TLS_CONFIGURATION",
           "the proxy refused the client certificate: " + error.message(),
           "the proxy's client CA and allowed names must accept the certificate KMS presents "
           "(CN=cks.kms.<region>.amazonaws.com)");
    }
  }

  // A new connection with the trust that worked, after the proxy closed the last one.
  bool reconnect() {
    tcp::endpoint ignored;
    return !open_socket(ignored) && !tls_handshake(*trusted_tls_).error;
  }

  Answer exchange(const PreparedRequest& request) {
    Answer answer;
    if (!stream_ && !reconnect()) {
      answer.error = net::error::connection_aborted;
      return answer;
    }
    std::string wire;
    factory_.http1(request, wire);
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    beast::flat_buffer buffer{kMaxUnparsedAnswerBytes};
    auto start = Clock::now();
    answer.error = run_within(io_, stream_->next_layer(), timeout_, [&](auto done) {
      net::async_write(*stream_, net::buffer(wire), [&, done](error_code error, std::size_t) {
        if (error)
          return done(error);
        http::async_read(*stream_, buffer, parser,
                         [done](error_code read_error, std::size_t) { done(read_error); });
      });
    });
    answer.milliseconds = milliseconds_since(start);
    if (answer.error || !parser.get().keep_alive())
      stream_.reset();
    if (answer.error)
      return answer;
    auto& response = parser.get();
    answer.status = response.result_int();
    answer.content_type = std::string(response[http::field::content_type]);
    answer.body = std::move(response.body());
    if (answer.status != 200) {
      error_code ignored;
      json::value document = json::parse(answer.body, ignored);
      if (const json::object* object = document.if_object()) {
        answer.error_name = string_member(*object, "errorName").value_or("");
        answer.error_message = string_member(*object, "errorMessage").value_or("");
      }
    }
    return answer;
  }

  // Names what KMS would report for an answer that is not a well-formed 200 (for key
  // requests, `key_error` is what CreateKey or the operation would raise). True if it is one.
  bool judge_transport(ProbeCheck& check, const Answer& answer, const std::string& key_error) {
    if (answer.error) {
      if (answer.error == net::error::timed_out) {
        fail(check, "XKS_PROXY_TIMED_OUT",
             "no answer within " + format_milliseconds(options_.timeout_seconds * 1000),
             "the proxy must answer within KMS's 250 ms; see its latency metrics and the HSM's");
      } else if (client_certificate_refused(answer.error, certificate_requested_)) {
        explain_client_refusal(check, answer.error);
      } else {
        fail(check, "XKS_PROXY_INVALID_RESPONSE",
             "the connection failed before an answer: " + answer.error.message(),
             "see the proxy's log for this request");
      }
      return true;
    }
    std::string seen = std::to_string(answer.status) +
                       (answer.error_name.empty() ? "" : " " + answer.error_name) +
                       (answer.error_message.empty() ? "" : ": " + answer.error_message);
    if (answer.status == 401) {
      // xks-proxy answers 401, not 404, for a path under no key store of the credential, so
      // that key store prefixes cannot be guessed: either can be wrong.
      fail(check, "INVALID_CREDENTIALS",
           "the proxy refused the SigV4 signature (" + seen +
               "): a wrong access key id or secret, or a URI path that names no key store of "
               "this credential",
           "the key store's credential in KMS (access key id and secret) must be one the proxy "
           "has for the key store, and XksProxyUriPath its prefix followed by /kms/xks/v1; "
           "`xks-proxy credentials new` makes a credential");
    } else if (answer.status == 403) {
      fail(check, key_error.empty() ? "XKS_PROXY_ACCESS_DENIED" : key_error,
           "the proxy refused access (" + seen + ")",
           "the key store's authorization rules or its kill switch deny KMS this request");
    } else if (answer.status == 404 && answer.error_name != "KeyNotFoundException") {
      fail(check, "XKS_PROXY_INVALID_CONFIGURATION",
           "nothing is served at " + options_.target.uri_prefix + "/kms/xks/v1 (" + seen + ")",
           "XksProxyUriPath in KMS must be the key store's prefix in the proxy's configuration "
           "followed by /kms/xks/v1");
    } else if (answer.status != 200) {
      fail(check, key_error.empty() ? "XKS_PROXY_INVALID_RESPONSE" : key_error,
           "the proxy answered " + seen, "see the proxy's log for this request");
    } else if (answer.content_type.find("application/json") == std::string::npos) {
      fail(check, "XKS_PROXY_INVALID_RESPONSE",
           "the answer's Content-Type is '" + answer.content_type + "', not application/json",
           "is something other than the proxy answering at this address?");
    } else {
      return false;
    }
    return true;
  }

  void judge_latency(ProbeCheck& check, const Answer& answer) {
    auto budget = static_cast<double>(budget_.count());
    if (check.result == CheckResult::kFailed || answer.milliseconds <= budget)
      return;
    fail(check, "XKS_PROXY_TIMED_OUT",
         "answered in " + format_milliseconds(answer.milliseconds) + ", over the budget of " +
             format_milliseconds(budget) + " (KMS gives a call 250 ms, network included)",
         "see the proxy's request and HSM latency metrics; KMS should reach the proxy over a "
         "short network path");
  }

  bool health() {
    PreparedRequest request;
    factory_.make(Operation::kGetHealthStatus, request);
    Answer answer = exchange(request);
    ProbeCheck& check = add("GetHealthStatus", CheckResult::kOk, answer.milliseconds, "");
    if (judge_transport(check, answer, ""))
      return false;
    error_code error;
    json::value document = json::parse(answer.body, error);
    const json::object* object = error ? nullptr : document.if_object();
    std::string shape_error;
    const json::array* fleet = nullptr;
    if (!object) {
      shape_error = "the answer is not a JSON object";
    } else if (auto size = object->find("xksProxyFleetSize"); size == object->end() ||
                                                              !size->value().is_int64() ||
                                                              size->value().get_int64() < 1) {
      shape_error = "xksProxyFleetSize is missing or not a positive integer";
    } else if (!string_member(*object, "xksProxyVendor") ||
               !string_member(*object, "xksProxyModel") || !string_member(*object, "ekmVendor")) {
      shape_error = "xksProxyVendor, xksProxyModel or ekmVendor is missing";
    } else if (auto details = object->find("ekmFleetDetails");
               details == object->end() || !details->value().is_array() ||
               details->value().get_array().empty()) {
      shape_error = "ekmFleetDetails is missing or empty";
    } else {
      fleet = &details->value().get_array();
    }
    std::string hsms;
    bool any_usable = false;
    for (std::size_t i = 0; fleet != nullptr && shape_error.empty() && i < fleet->size(); ++i) {
      const json::object* entry = (*fleet)[i].if_object();
      auto status = entry ? string_member(*entry, "healthStatus") : std::nullopt;
      auto id = entry ? string_member(*entry, "id") : std::nullopt;
      if (!entry || !id || !string_member(*entry, "model") || !status ||
          (*status != "ACTIVE" && *status != "DEGRADED" && *status != "UNAVAILABLE")) {
        shape_error = "ekmFleetDetails[" + std::to_string(i) +
                      "] lacks id or model, or its healthStatus is not ACTIVE, DEGRADED or "
                      "UNAVAILABLE";
        break;
      }
      any_usable = any_usable || *status != "UNAVAILABLE";
      hsms += (hsms.empty() ? "" : ", ") + *id + " " + *status;
    }
    if (!shape_error.empty()) {
      fail(check, "XKS_PROXY_INVALID_RESPONSE", shape_error,
           "the proxy's GetHealthStatus answer must follow the XKS API");
      return false;
    }
    check.detail = "fleet size " + std::to_string(object->at("xksProxyFleetSize").get_int64()) +
                   "; HSMs: " + hsms + "; path, SigV4 (host;x-amz-date) and shape as KMS needs";
    if (!any_usable) {
      fail(check, "KMSInvalidStateException (every cryptographic operation)",
           "every HSM reports UNAVAILABLE", "see the proxy's HSM health and circuit metrics");
    }
    judge_latency(check, answer);
    return true;
  }

  void probe_key(const std::string& key_id) {
    PreparedRequest request;
    factory_.make(Operation::kGetKeyMetadata, request, key_id);
    Answer answer = exchange(request);
    ProbeCheck& metadata =
        add("key " + key_id + ": GetKeyMetadata", CheckResult::kOk, answer.milliseconds, "");
    if (answer.status == 404 && answer.error_name == "KeyNotFoundException") {
      fail(metadata, "XksKeyNotFoundException (CreateKey)",
           "the proxy has no key " + key_id + " (" + answer.error_message + ")",
           "create it (`xks-proxy keys create`) and list it in the key store's `keys`");
      return;
    }
    if (judge_transport(metadata, answer, "XksKeyInvalidConfigurationException (CreateKey)"))
      return;
    error_code error;
    json::value document = json::parse(answer.body, error);
    const json::object* object = error ? nullptr : document.if_object();
    auto spec = object ? string_member(*object, "keySpec") : std::nullopt;
    auto status = object ? string_member(*object, "keyStatus") : std::nullopt;
    std::string usages;
    bool encrypts = false, decrypts = false;
    if (auto usage = object ? object->find("keyUsage") : nullptr;
        object && usage != object->end() && usage->value().is_array()) {
      for (const json::value& entry : usage->value().get_array()) {
        std::string name = entry.is_string() ? std::string(entry.get_string()) : "?";
        usages += (usages.empty() ? "" : " ") + name;
        encrypts = encrypts || name == "ENCRYPT";
        decrypts = decrypts || name == "DECRYPT";
      }
    }
    metadata.detail = spec.value_or("no keySpec") + ", keyUsage [" + usages + "], " +
                      status.value_or("no keyStatus");
    if (!object || !spec || !status) {
      fail(metadata, "XKS_PROXY_INVALID_RESPONSE",
           "the answer lacks keySpec, keyUsage or keyStatus",
           "the proxy's GetKeyMetadata answer must follow the XKS API");
      return;
    }
    if (*spec != "AES_256" || !encrypts || !decrypts) {
      fail(metadata, "XksKeyInvalidConfigurationException (CreateKey)",
           "KMS needs an AES_256 key that both encrypts and decrypts",
           "use a key `xks-proxy keys create` made (AES-256, for encryption and decryption)");
      return;
    }
    if (*status != "ENABLED") {
      fail(metadata, "XksKeyInvalidConfigurationException (CreateKey)",
           "the key is " + *status + "; KMS needs it ENABLED",
           "enable it: `xks-proxy keys enable " + key_id + " --config FILE`");
      return;
    }
    judge_latency(metadata, answer);
    round_trip(key_id);
  }

  void round_trip(const std::string& key_id) {
    const std::string name = "key " + key_id + ": Encrypt and Decrypt with AAD";
    PreparedRequest encrypt;
    factory_.make(Operation::kEncrypt, encrypt, key_id);
    Answer sealed_answer = exchange(encrypt);
    ProbeCheck& check = add(name, CheckResult::kOk, sealed_answer.milliseconds, "");
    const std::string operation_error = "KMSInvalidStateException (Encrypt, Decrypt)";
    if (judge_transport(check, sealed_answer, operation_error))
      return;
    Outcome encrypted = judge(encrypt, sealed_answer.status, sealed_answer.body, true);
    auto sealed = seal_from_answer(encrypt, sealed_answer.body);
    if (encrypted.kind != OutcomeKind::kOk || !sealed) {
      fail(check, "XKS_PROXY_INVALID_RESPONSE", "Encrypt: " + encrypted.label,
           "the proxy's Encrypt answer must follow the XKS API");
      return;
    }
    RequestFactory decrypts(options_.target, mix_,
                            std::make_shared<std::vector<SealedRecord>>(1, *sealed),
                            std::random_device{}());
    PreparedRequest decrypt;
    decrypts.make(Operation::kDecrypt, decrypt);
    Answer opened = exchange(decrypt);
    check.milliseconds += opened.milliseconds;
    check.detail = "Encrypt " + format_milliseconds(sealed_answer.milliseconds) + ", Decrypt " +
                   format_milliseconds(opened.milliseconds);
    if (judge_transport(check, opened, operation_error))
      return;
    Outcome decrypted = judge(decrypt, opened.status, opened.body, true);
    if (decrypted.kind != OutcomeKind::kOk) {
      fail(check, operation_error, "Decrypt: " + decrypted.label,
           "the proxy must give back the plaintext it encrypted under the same key and AAD");
      return;
    }
    check.detail += "; the plaintext came back";
    judge_latency(check, sealed_answer.milliseconds > opened.milliseconds ? sealed_answer : opened);
  }

  const ClientOptions& options_;
  const std::vector<std::string>& key_ids_;
  std::chrono::milliseconds budget_;
  WorkloadMix mix_;
  RequestFactory factory_;
  Clock::duration timeout_;
  net::io_context io_;
  tcp::resolver::results_type endpoints_;
  std::unique_ptr<tcp::socket> socket_;
  std::unique_ptr<TlsStream> stream_;
  std::unique_ptr<net::ssl::context> private_tls_;  // --cacert's, tried after the system's
  std::unique_ptr<net::ssl::context> trusted_tls_;  // the one the handshake passed with
  bool certificate_requested_ = false;              // in the last handshake, by the server
  std::string leaf_names_;                          // of the last handshake's certificate
  ProbeReport report_;
};

// A field for the report: the server's words (error messages, names) are its to choose, so no
// control character reaches a terminal and none runs on for pages.
std::string clean(std::string_view text) {
  constexpr std::size_t kMaxField = 400;
  std::string out;
  for (char c : text.substr(0, kMaxField)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte == 0x7f ? '?' : c);
  }
  if (text.size() > kMaxField)
    out += "...";
  return out;
}

const char* result_name(CheckResult result) {
  switch (result) {
    case CheckResult::kOk:
      return "ok";
    case CheckResult::kWarning:
      return "warning";
    case CheckResult::kFailed:
      return "failed";
  }
  return "failed";
}

}  // namespace

bool ProbeReport::passed() const {
  return std::none_of(checks.begin(), checks.end(),
                      [](const ProbeCheck& check) { return check.result == CheckResult::kFailed; });
}

ProbeReport probe(const ClientOptions& options, const std::vector<std::string>& key_ids,
                  std::chrono::milliseconds budget) {
  return Prober(options, key_ids, budget).run();
}

std::string probe_text(const ProbeReport& report) {
  std::ostringstream text;
  text << "xks-load probe: " << report.target << ", checked as KMS connects\n";
  std::size_t failed = 0, warnings = 0;
  for (const ProbeCheck& check : report.checks) {
    const char* mark = check.result == CheckResult::kOk        ? "ok  "
                       : check.result == CheckResult::kWarning ? "WARN"
                                                               : "FAIL";
    text << "  " << mark << "  " << clean(check.name) << " ("
         << format_milliseconds(check.milliseconds) << ")"
         << (check.detail.empty() ? "" : ": " + clean(check.detail)) << "\n";
    if (!check.kms_error.empty())
      text << "        KMS would report: " << check.kms_error << "\n";
    if (!check.cause.empty())
      text << "        cause: " << clean(check.cause) << "\n";
    if (!check.fix.empty())
      text << "        fix: " << clean(check.fix) << "\n";
    failed += check.result == CheckResult::kFailed;
    warnings += check.result == CheckResult::kWarning;
  }
  if (failed == 0) {
    text << "probe: passed, " << report.checks.size() << " checks";
    if (warnings > 0)
      text << " (" << warnings << " with a warning)";
  } else {
    text << "probe: FAILED, " << failed << " of " << report.checks.size() << " checks";
  }
  text << "\n";
  return text.str();
}

std::string probe_json(const ProbeReport& report) {
  json::array checks;
  for (const ProbeCheck& check : report.checks) {
    checks.push_back(json::object{{"name", clean(check.name)},
                                  {"result", result_name(check.result)},
                                  {"milliseconds", check.milliseconds},
                                  {"detail", clean(check.detail)},
                                  {"kms_error", check.kms_error},
                                  {"cause", clean(check.cause)},
                                  {"fix", clean(check.fix)}});
  }
  return json::serialize(json::object{
             {"target", report.target}, {"passed", report.passed()}, {"checks", checks}}) +
         "\n";
}

}  // namespace xks::load
