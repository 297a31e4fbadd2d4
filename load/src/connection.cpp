// Connecting: TLS context, TCP connect, handshake with SNI and name verification, ALPN.
#include "connection.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

namespace xks::load {

using net::use_awaitable;

namespace {

net::ssl::context make_tls_context(const ClientOptions& options) {
  net::ssl::context tls(net::ssl::context::tls_client);
  tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                  net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                  net::ssl::context::no_tlsv1_1);
  if (options.ca_file.empty())
    tls.set_default_verify_paths();
  else
    tls.load_verify_file(options.ca_file);
  tls.set_verify_mode(net::ssl::verify_peer);
  if (!options.client_certificate.empty()) {
    tls.use_certificate_chain_file(options.client_certificate);
    tls.use_private_key_file(options.client_key, net::ssl::context::pem);
  }
  static constexpr unsigned char kH2[] = "\x02h2";
  static constexpr unsigned char kHttp1[] = "\x08http/1.1";
  if (options.http2)
    SSL_CTX_set_alpn_protos(tls.native_handle(), kH2, sizeof kH2 - 1);
  else
    SSL_CTX_set_alpn_protos(tls.native_handle(), kHttp1, sizeof kHttp1 - 1);
  return tls;
}

}  // namespace

TransportFailure transport_failure(const boost::system::error_code& error) {
  if (error == boost::beast::error::timeout)
    return TransportFailure("transport: timeout");
  return TransportFailure("transport: " + error.message());
}

void expect_server_name(SSL* ssl, const std::string& host) {
  boost::system::error_code not_an_address;
  net::ip::make_address(host, not_an_address);
  if (not_an_address) {
    // SNI (SSL_set_tlsext_host_name is a macro with a C cast) and name verification.
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
    SSL_set1_host(ssl, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  }
}

awaitable<void> sleep_until(Clock::time_point when) {
  if (Clock::now() >= when)
    co_return;
  net::steady_timer timer(co_await net::this_coro::executor, when);
  co_await timer.async_wait(net::as_tuple(use_awaitable));
}

tl::expected<RunContext, std::string> prepare_run(const ClientOptions& options) {
  std::unique_ptr<net::ssl::context> tls;
  try {
    tls = std::make_unique<net::ssl::context>(make_tls_context(options));
  } catch (const boost::system::system_error& error) {
    return tl::unexpected("TLS setup: " + std::string(error.what()));
  }
  net::io_context context;
  net::ip::tcp::resolver resolver(context);
  boost::system::error_code error;
  auto endpoints = resolver.resolve(options.target.host, options.target.port, error);
  if (error) {
    return tl::unexpected("cannot resolve " + options.target.host + ":" + options.target.port +
                          ": " + error.message());
  }
  return RunContext{options, std::move(tls), std::move(endpoints),
                    std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(options.timeout_seconds))};
}

awaitable<void> Connection::open(const RunContext& run) {
  arm();
  auto [connect_error, endpoint] = co_await net::async_connect(stream_.next_layer(), run.endpoints,
                                                               net::as_tuple(use_awaitable));
  if (connect_error)
    throw failure(connect_error);
  stream_.next_layer().set_option(net::ip::tcp::no_delay(true));
  SSL* ssl = stream_.native_handle();
  expect_server_name(ssl, run.options.target.host);
  auto [handshake_error] =
      co_await stream_.async_handshake(net::ssl::stream_base::client, net::as_tuple(use_awaitable));
  if (handshake_error)
    throw failure(handshake_error);
  disarm();
  const unsigned char* protocol = nullptr;
  unsigned int protocol_length = 0;
  SSL_get0_alpn_selected(ssl, &protocol, &protocol_length);
  std::string_view selected(reinterpret_cast<const char*>(protocol), protocol_length);
  if (run.options.http2 && selected != "h2")
    throw TransportFailure("transport: the server did not agree to HTTP/2 (ALPN)");
}

}  // namespace xks::load
