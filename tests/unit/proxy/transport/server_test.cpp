// The transport in process, over loopback and real TLS, with a stub Application instead of
// XKS: keep-alive, pipelining, 100-continue, HTTP/2 streams, refusals rendered by the
// application, the admin listener, and a drain that still answers a request in flight. The
// clients are Boost.Beast and an nghttp2 client session on asio::ssl::stream, independent of
// the server's own TlsSocket and Http2Connection.
#include "xks/proxy/transport/server.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "nghttp2_client.h"
#include "xks/proxy/transport/tls.h"

namespace xks::proxy {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// A self-signed certificate for localhost, made once with the openssl command.
const std::filesystem::path& certificate_dir() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() /
                ("xks-transport-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost "
        "-keyout " +
        (path / "key.pem").string() + " -out " + (path / "cert.pem").string() + " 2>/dev/null";
    EXPECT_EQ(std::system(command.c_str()), 0);
    return path;
  }();
  return dir;
}

class TransportTest : public testing::Test {
 protected:
  void SetUp() override {
    config_.listen = {"127.0.0.1", 0};
    config_.admin_listen = {"127.0.0.1", 0};
    config_.io_threads = 1;
    config_.header_timeout = 2000ms;
    config_.limits.max_body_bytes = 4096;
    TlsConfig tls;
    tls.certificate_chain = (certificate_dir() / "cert.pem").string();
    tls.private_key = (certificate_dir() / "key.pem").string();
    auto context = make_server_tls_context(tls);
    ASSERT_TRUE(context.has_value()) << context.error();

    Application application;
    application.handle = [this](HttpRequest request, Respond respond) {
      if (request.target == "/slow") {
        // Answered from another thread once the test says so, as the HSM executor does.
        slow_ = std::thread([this, respond] {
          arrived_.set_value();
          release_.get_future().wait();
          respond({200, "slow"});
        });
        return;
      }
      respond({200, request.method + " " + request.target + " " + request.body});
    };
    application.render_refusal = [](HttpRefusal reason, const std::string&) {
      return HttpResponse{reason == HttpRefusal::kBodyBytes ? 413 : 400,
                          "refused:" + std::string(refusal_name(reason))};
    };
    application.scrape = [this] { return "stub_metric 1\n" + registry_.serialize(); };
    application.ready = [] { return true; };
    server_ =
        std::make_unique<Server>(config_, std::move(*context), std::move(application), registry_);
    auto listening = server_->listen();
    ASSERT_TRUE(listening.has_value()) << listening.error();
    running_ = std::async(std::launch::async, [this] { server_->run(); });
  }

  void TearDown() override {
    if (slow_.joinable()) {
      try {
        release_.set_value();
      } catch (const std::future_error&) {
      }  // already released by the test
    }
    server_->stop();
    running_.wait();
    if (slow_.joinable())
      slow_.join();
  }

  // A TLS connection to the XKS listener.
  struct Client {
    explicit Client(std::uint16_t port) : tls(net::ssl::context::tls_client), stream(io, tls) {
      tls.load_verify_file((certificate_dir() / "cert.pem").string());
      stream.set_verify_mode(net::ssl::verify_peer);
      stream.set_verify_callback(net::ssl::host_name_verification("localhost"));
      stream.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
      stream.handshake(net::ssl::stream_base::client);
    }
    http::response<http::string_body> exchange(http::request<http::string_body> request) {
      request.prepare_payload();
      http::write(stream, request);
      return read();
    }
    http::response<http::string_body> read() {
      http::response<http::string_body> response;
      http::read(stream, buffer, response);
      return response;
    }
    net::io_context io;
    net::ssl::context tls;
    net::ssl::stream<tcp::socket> stream;
    boost::beast::flat_buffer buffer;
  };

  static http::request<http::string_body> post(std::string target, std::string body) {
    http::request<http::string_body> request(http::verb::post, target, 11);
    request.set(http::field::host, "localhost");
    request.body() = std::move(body);
    return request;
  }

  ServerConfig config_;
  metrics::Registry registry_;
  std::unique_ptr<Server> server_;
  std::future<void> running_;
  std::thread slow_;
  std::promise<void> arrived_;
  std::promise<void> release_;
};

TEST_F(TransportTest, KeepAliveCarriesSeveralRequestsToTheApplication) {
  Client client(server_->port());
  for (int i = 0; i < 3; ++i) {
    auto response = client.exchange(post("/echo", "body" + std::to_string(i)));
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_EQ(response.body(), "POST /echo body" + std::to_string(i));
    EXPECT_EQ(response[http::field::content_type], "application/json");
    EXPECT_TRUE(response.keep_alive());
  }
}

TEST_F(TransportTest, Http2StreamsReachTheApplicationAndComeBackAnswered) {
  net::io_context io;
  net::ssl::context tls(net::ssl::context::tls_client);
  tls.load_verify_file((certificate_dir() / "cert.pem").string());
  static const unsigned char kH2[] = {2, 'h', '2'};
  ASSERT_EQ(SSL_CTX_set_alpn_protos(tls.native_handle(), kH2, sizeof kH2), 0);
  net::ssl::stream<tcp::socket> stream(io, tls);
  stream.set_verify_mode(net::ssl::verify_peer);
  stream.set_verify_callback(net::ssl::host_name_verification("localhost"));
  stream.next_layer().connect({net::ip::make_address("127.0.0.1"), server_->port()});
  stream.handshake(net::ssl::stream_base::client);

  test::Nghttp2Client client;
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(client.request("/s" + std::to_string(i), "body" + std::to_string(i)));
  std::int32_t big = client.request("/big", std::string(10000, 'b'));
  // Move bytes until every stream is closed (bounded: the server answers at once).
  auto all_closed = [&] {
    for (std::int32_t id : ids)
      if (client.streams[id].closed_with == ~0u)
        return false;
    return client.streams[big].closed_with != ~0u;
  };
  std::array<std::uint8_t, 16384> input{};
  for (int round = 0; round < 200 && !all_closed(); ++round) {
    const std::uint8_t* data = nullptr;
    for (ssize_t n; (n = nghttp2_session_mem_send(client.session, &data)) > 0;)
      net::write(stream, net::buffer(data, static_cast<std::size_t>(n)));
    std::size_t n = stream.read_some(net::buffer(input));
    ASSERT_GE(nghttp2_session_mem_recv(client.session, input.data(), n), 0);
  }
  ASSERT_TRUE(all_closed());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(client.streams[ids[i]].status, 200);
    EXPECT_EQ(client.streams[ids[i]].answer,
              "POST /s" + std::to_string(i) + " body" + std::to_string(i));
  }
  EXPECT_EQ(client.streams[big].status, 413);  // over max_body_bytes (4096 here)
  EXPECT_EQ(client.streams[big].answer, "refused:body_bytes");
}

TEST_F(TransportTest, PipelinedRequestsAreAnsweredInOrder) {
  Client client(server_->port());
  std::string wire;
  for (int i = 0; i < 4; ++i) {
    auto request = post("/p" + std::to_string(i), "x");
    request.prepare_payload();
    std::ostringstream text;
    text << request;
    wire += text.str();
  }
  net::write(client.stream, net::buffer(wire));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(client.read().body(), "POST /p" + std::to_string(i) + " x");
}

TEST_F(TransportTest, Expect100ContinueGetsTheInterimAnswerFirst) {
  Client client(server_->port());
  auto request = post("/c", "{}");
  request.set(http::field::expect, "100-continue");
  request.prepare_payload();
  http::request_serializer<http::string_body> serializer(request);
  http::write_header(client.stream, serializer);
  http::response<http::empty_body> interim;
  http::read(client.stream, client.buffer, interim);
  EXPECT_EQ(interim.result_int(), 100u);
  http::write(client.stream, serializer);
  EXPECT_EQ(client.read().body(), "POST /c {}");
}

TEST_F(TransportTest, ABodyOverTheLimitGetsTheApplicationsRefusal) {
  Client client(server_->port());
  auto response = client.exchange(post("/big", std::string(5000, 'b')));
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_EQ(response.body(), "refused:body_bytes");
  EXPECT_FALSE(response.keep_alive());
  auto text = registry_.serialize();
  EXPECT_NE(text.find("xks_http_refusals_total{protocol=\"http1\",reason=\"body_bytes\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(TransportTest, TheAdminListenerServesMetricsAndReadiness) {
  net::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect({net::ip::make_address("127.0.0.1"), server_->admin_port()});
  for (const char* target : {"/metrics", "/readyz", "/nowhere"}) {
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, "localhost");
    http::write(stream, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (std::string_view(target) == "/metrics") {
      EXPECT_EQ(response.result_int(), 200u);
      EXPECT_NE(response.body().find("stub_metric 1"), std::string::npos);
      EXPECT_NE(response.body().find("xks_tls_handshakes_total"), std::string::npos);
    } else if (std::string_view(target) == "/readyz") {
      EXPECT_EQ(response.result_int(), 200u);
    } else {
      EXPECT_EQ(response.result_int(), 404u);
    }
  }
}

TEST_F(TransportTest, StoppingStillAnswersTheRequestInFlight) {
  Client client(server_->port());
  auto request = post("/slow", "");
  request.prepare_payload();
  http::write(client.stream, request);
  arrived_.get_future().wait();  // the request is with the application
  server_->stop();
  release_.set_value();
  auto response = client.read();
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response.body(), "slow");
}

TEST_F(TransportTest, AHeaderOverTheLimitGetsTheApplicationsRefusal) {
  Client client(server_->port());
  auto request = post("/h", "{}");
  request.set("x-large", std::string(20000, 'h'));
  auto response = client.exchange(request);
  EXPECT_EQ(response.result_int(), 400u);  // the stub's rendering of every other refusal
  EXPECT_EQ(response.body(), "refused:header_bytes");
}

}  // namespace
}  // namespace xks::proxy
