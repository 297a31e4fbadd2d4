// The server's TLS context: TLS 1.2 and 1.3 only with the spec's AEAD suites, ALPN, and
// optional mTLS where a client certificate outside the allowed names ends the handshake with
// the handshake_failure alert (what AWS's conformance client expects).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <tl/expected.hpp>

#include "xks/proxy/config/server_config.h"
#include "xks/proxy/ops/metrics.h"

namespace xks::proxy {

tl::expected<std::shared_ptr<boost::asio::ssl::context>, std::string> make_server_tls_context(
    const TlsConfig& config);

// Registers xks_tls_certificate_expiry_timestamp_seconds, then set_certificate_expiry() sets it
// (at start and on each reload): notAfter of the serving certificate (the first in
// `config.certificate_chain`) as Unix time; left as it was if it cannot be read.
metrics::Gauge& register_certificate_expiry(metrics::Registry& registry);
void set_certificate_expiry(metrics::Gauge& expiry, const TlsConfig& config);

}  // namespace xks::proxy
