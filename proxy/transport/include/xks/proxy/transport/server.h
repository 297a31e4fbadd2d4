// The network side: the HTTPS listener (TLS; HTTP/1.1 and HTTP/2 by ALPN) and the plain-HTTP
// admin listener (/metrics, /livez, /readyz). One io_context per I/O thread; a connection stays
// on the thread that accepted it; requests go to the Application, whose answers are posted back.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <tl/expected.hpp>

#include "xks/proxy/config/server_config.h"
#include "xks/proxy/ops/metrics.h"
#include "xks/proxy/transport/application.h"

namespace boost::asio::ssl {
class context;
}

namespace xks::proxy {

class Server {
 public:
  // Serves `application` with `config`'s listeners and limits; registers the transport's
  // metrics in `registry`.
  Server(const ServerConfig& config, std::shared_ptr<boost::asio::ssl::context> tls,
         Application application, metrics::Registry& registry);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // New handshakes use `tls` from now on (a reload's certificate, key or client CA);
  // connections keep the context they started with. Any thread.
  void replace_tls(std::shared_ptr<boost::asio::ssl::context> tls);

  // Binds both listeners (port 0 picks a free port; see port() and admin_port()).
  tl::expected<void, std::string> listen();
  std::uint16_t port() const;
  std::uint16_t admin_port() const;

  // Serves until stop() (from any thread), then stops accepting, lets requests in flight finish
  // (at most 5 s) and returns.
  void run();
  void stop();

  struct State;  // opaque: listeners, I/O contexts and threads

 private:
  std::unique_ptr<State> state_;
};

}  // namespace xks::proxy
