// A TLS connection driven directly on its socket (OpenSSL reads and writes the non-blocking
// descriptor; Asio only waits for readiness). Unlike asio::ssl::stream, which keeps two 17 KiB
// buffers and a BIO pair per connection for its whole life, an idle connection here holds only
// OpenSSL's session state (SSL_MODE_RELEASE_BUFFERS frees the record buffers): thousands of
// KMS keep-alive connections stay cheap. Meets Beast's AsyncReadStream/AsyncWriteStream.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>

namespace xks::proxy {

class TlsSocket {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  // Holds `context` for the connection's life: its callbacks (client name checks) live there.
  TlsSocket(boost::asio::ip::tcp::socket socket,
            std::shared_ptr<boost::asio::ssl::context> context);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  SSL* native_handle() { return ssl_; }
  // The ALPN protocol the handshake chose ("" when none).
  std::string_view alpn() const;
  // The verified client certificate's subject ("" without mTLS).
  std::string peer_subject() const;
  bool has_peer_certificate() const { return SSL_get0_peer_certificate(ssl_) != nullptr; }
  // A resumed session skips certificate verification: false when its client certificate has
  // expired since (a full handshake checks that itself).
  bool peer_certificate_still_valid() const;
  // The peer's address, and as "address:port" ("[address]:port" for IPv6); read once, when
  // the connection was accepted (unspecified if the peer was gone by then).
  const boost::asio::ip::address& peer_ip() const { return peer_ip_; }
  const std::string& peer_address() const { return peer_address_; }

  // Once `timeout` passes, the pending operation and every later one end with timed_out (or
  // operation_aborted) until the next expires_after()/expires_never(). One deadline covers
  // whatever the connection is doing, as with beast::tcp_stream; the expiry is remembered, so
  // an operation that was between steps when it came (posted, not waiting) cannot outlive it.
  void expires_after(std::chrono::steady_clock::duration timeout);
  void expires_never();
  void close();
  // Ends the pending operation and every later one with timed_out, for good (the connection
  // was evicted). Call on the socket's own executor.
  void abort();
  // Ends the pending operation (operation_aborted); later ones run normally.
  void cancel();
  // What abort() needs from another thread: posts it to the socket's executor, and does
  // nothing once the socket is gone.
  std::function<void()> abort_later();

  template <typename Handler>
  auto async_handshake(Handler&& handler) {
    return run([](SSL* ssl) { return SSL_do_handshake(ssl) == 1 ? 0 : -1; }, nullptr,
               std::forward<Handler>(handler));
  }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    boost::asio::mutable_buffer target = *boost::asio::buffer_sequence_begin(buffers);
    return run(
        [target](SSL* ssl) {
          std::size_t read = 0;
          if (target.size() == 0)
            return 0;
          return SSL_read_ex(ssl, target.data(), target.size(), &read) == 1 ? static_cast<int>(read)
                                                                            : -1;
        },
        nullptr, std::forward<Handler>(handler));
  }

  // Completes once application data has arrived (it stays to be read): lets a connection wait
  // between requests without holding a read buffer.
  template <typename Handler>
  auto async_wait_input(Handler&& handler) {
    return run(
        [](SSL* ssl) {
          char byte = 0;
          std::size_t peeked = 0;
          return SSL_peek_ex(ssl, &byte, 1, &peeked) == 1 ? static_cast<int>(peeked) : -1;
        },
        nullptr, std::forward<Handler>(handler));
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    // A single buffer is written from where it is (the caller keeps it until the handler
    // runs); several are gathered first, for one TLS record instead of one per piece.
    auto it = boost::asio::buffer_sequence_begin(buffers);
    auto end = boost::asio::buffer_sequence_end(buffers);
    std::shared_ptr<std::string> gathered;
    boost::asio::const_buffer data;
    if (it != end && std::next(it) == end) {
      data = *it;
    } else {
      gathered = std::make_shared<std::string>();
      for (; it != end && gathered->size() < kMaxWriteBytes; ++it) {
        boost::asio::const_buffer piece = *it;
        gathered->append(static_cast<const char*>(piece.data()),
                         std::min(piece.size(), kMaxWriteBytes - gathered->size()));
      }
      data = boost::asio::buffer(*gathered);
    }
    const std::size_t size = std::min(data.size(), kMaxWriteBytes);
    return run(
        [bytes = data.data(), size](SSL* ssl) {
          std::size_t written = 0;
          if (size == 0)
            return 0;
          return SSL_write_ex(ssl, bytes, size, &written) == 1 ? static_cast<int>(written) : -1;
        },
        std::move(gathered), std::forward<Handler>(handler));
  }

  // After a failed handshake: sends FIN behind OpenSSL's alert and reads (dropping) until the
  // peer closes, so that the alert is not overtaken by a reset from unread input. Every step
  // starts from a readiness wait and reads at most kDrainBytesPerTurn, so a peer that keeps
  // sending neither recurses nor holds the thread.
  template <typename Handler>
  auto async_drain(Handler&& handler) {
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    return boost::asio::async_compose<Handler, void(boost::system::error_code)>(
        [this, started = false](auto& self, boost::system::error_code wait_error = {}) mutable {
          if (wait_error || expired_)
            return self.complete(wait_error ? wait_error : boost::asio::error::timed_out);
          boost::system::error_code error;
          if (started) {
            char scratch[4096];
            for (std::size_t drained = 0; drained < kDrainBytesPerTurn && !error;) {
              drained += socket_.read_some(boost::asio::buffer(scratch), error);
            }
            if (error && error != boost::asio::error::would_block)
              return self.complete(error);
          }
          started = true;
          socket_.async_wait(boost::asio::ip::tcp::socket::wait_read, std::move(self));
        },
        handler, socket_);
  }

  template <typename Handler>
  auto async_shutdown(Handler&& handler) {
    return run([](SSL* ssl) { return SSL_shutdown(ssl) >= 0 ? 0 : -1; }, nullptr,
               std::forward<Handler>(handler));
  }

 private:
  static constexpr std::size_t kMaxWriteBytes = 16 * 1024;
  static constexpr std::size_t kDrainBytesPerTurn = 64 * 1024;

  // Retries `attempt` (a non-negative result, or -1 with SSL_get_error telling why) until it
  // completes, waiting for the socket to become readable or writable as OpenSSL asks. Like any
  // Asio operation it never calls the handler from inside the initiating call: a result that is
  // ready at once (OpenSSL already holds decrypted records, or a write fits) is posted. Loops
  // that start the next read from a completion therefore run in constant stack, one step per
  // turn of the event loop, however many tiny records a peer packs into one TCP segment.
  template <typename Attempt, typename Handler>
  auto run(Attempt attempt, std::shared_ptr<std::string> keep_alive, Handler&& handler) {
    return boost::asio::async_compose<Handler, void(boost::system::error_code, std::size_t)>(
        [this, attempt, keep_alive, waited = false, posted = false,
         error = boost::system::error_code(),
         bytes = std::size_t{0}](auto& self, boost::system::error_code wait_error = {}) mutable {
          if (!posted) {
            error = expired_ ? boost::asio::error::timed_out : wait_error;
            if (!error) {
              ERR_clear_error();
              int outcome = attempt(ssl_);
              if (outcome >= 0) {
                bytes = static_cast<std::size_t>(outcome);
              } else {
                int reason = SSL_get_error(ssl_, outcome);
                if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) {
                  waited = true;
                  return socket_.async_wait(reason == SSL_ERROR_WANT_READ
                                                ? boost::asio::ip::tcp::socket::wait_read
                                                : boost::asio::ip::tcp::socket::wait_write,
                                            std::move(self));
                }
                error = error_for(reason);
              }
            }
            if (!waited) {
              posted = true;
              return boost::asio::post(socket_.get_executor(), std::move(self));
            }
          }
          self.complete(error, bytes);
        },
        handler, socket_);
  }

  static boost::system::error_code error_for(int reason);
  // Waits for `at`, then expires the connection if deadline_ has come by then, or waits on.
  void arm_timer(std::chrono::steady_clock::time_point at);

  std::shared_ptr<boost::asio::ssl::context> context_;  // outlives ssl_ (freed in ~TlsSocket)
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::address peer_ip_;
  std::string peer_address_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool timer_armed_ = false;            // a wait is pending (for timer_.expiry())
  std::uint64_t timer_generation_ = 0;  // the handler of a replaced wait is ignored
  bool expired_ = false;
  bool aborted_ = false;  // every deadline counts as expired
  // The timer's handler may run after this object is gone (it was already due): it checks
  // this token first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  SSL* ssl_;
};

}  // namespace xks::proxy
