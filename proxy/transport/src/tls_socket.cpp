// The TLS connection's non-template parts.
#include "tls_socket.h"

#include <openssl/x509.h>

namespace xks::proxy {

TlsSocket::TlsSocket(boost::asio::ip::tcp::socket socket,
                     std::shared_ptr<boost::asio::ssl::context> context)
    : context_(std::move(context)),
      socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      ssl_(SSL_new(context_->native_handle())) {
  boost::system::error_code error;
  boost::asio::ip::tcp::endpoint peer = socket_.remote_endpoint(error);
  if (!error) {
    peer_ip_ = peer.address();
    std::string ip = peer_ip_.to_string();
    peer_address_ = (peer_ip_.is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(peer.port());
  }
  socket_.non_blocking(true);
  socket_.set_option(boost::asio::ip::tcp::no_delay(true));
  SSL_set_fd(ssl_, socket_.native_handle());
  SSL_set_accept_state(ssl_);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
}

TlsSocket::~TlsSocket() {
  SSL_free(ssl_);
}

std::string_view TlsSocket::alpn() const {
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &protocol, &length);
  return {reinterpret_cast<const char*>(protocol), length};
}

std::string TlsSocket::peer_subject() const {
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  if (certificate == nullptr)
    return {};
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(certificate), subject, sizeof subject);
  return subject;
}

bool TlsSocket::peer_certificate_still_valid() const {
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  return certificate == nullptr || X509_cmp_current_time(X509_get0_notAfter(certificate)) > 0;
}

void TlsSocket::expires_after(std::chrono::steady_clock::duration timeout) {
  expired_ = aborted_;
  deadline_ = std::chrono::steady_clock::now() + timeout;
  // A timer due no later than the new deadline stays: when it fires it waits on for the rest.
  // A request moves the deadline several times; this way it costs no timer operation.
  if (!timer_armed_ || timer_.expiry() > deadline_)
    arm_timer(deadline_);
}

void TlsSocket::expires_never() {
  expired_ = aborted_;
  deadline_ = std::chrono::steady_clock::time_point::max();
}

void TlsSocket::arm_timer(std::chrono::steady_clock::time_point at) {
  std::uint64_t generation = ++timer_generation_;
  timer_armed_ = true;
  timer_.expires_at(at);  // a wait pending for an earlier time ends (its generation is old)
  timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_), generation](boost::system::error_code error) {
        if (error == boost::asio::error::operation_aborted || alive.expired() ||
            generation != timer_generation_) {
          return;
        }
        timer_armed_ = false;
        if (deadline_ == std::chrono::steady_clock::time_point::max())
          return;
        if (std::chrono::steady_clock::now() < deadline_)
          return arm_timer(deadline_);
        expired_ = true;
        boost::system::error_code ignored;
        socket_.cancel(ignored);
      });
}

void TlsSocket::cancel() {
  boost::system::error_code ignored;
  socket_.cancel(ignored);
}

void TlsSocket::abort() {
  aborted_ = true;
  expired_ = true;
  boost::system::error_code ignored;
  socket_.cancel(ignored);
}

std::function<void()> TlsSocket::abort_later() {
  return [this, executor = get_executor(), alive = std::weak_ptr<bool>(alive_)] {
    boost::asio::post(executor, [this, alive] {
      if (!alive.expired())
        abort();
    });
  };
}

void TlsSocket::close() {
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

boost::system::error_code TlsSocket::error_for(int reason) {
  if (reason == SSL_ERROR_ZERO_RETURN)
    return boost::asio::error::eof;
  unsigned long code = ERR_get_error();
  if (code != 0) {
    return {static_cast<int>(code), boost::asio::error::get_ssl_category()};
  }
  // SSL_ERROR_SYSCALL without an OpenSSL error: the peer closed the connection abruptly.
  return errno != 0 ? boost::system::error_code(errno, boost::system::system_category())
                    : boost::system::error_code(boost::asio::error::eof);
}

}  // namespace xks::proxy
