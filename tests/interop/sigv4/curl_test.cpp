// Cross-check against curl's --aws-sigv4, a second independent signer: curl sends a real XKS
// request to a loopback socket; the captured bytes must verify (curl signs
// content-type;host;x-amz-date, with the port in Host).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>

#include "owned_request.h"
#include "subprocess.h"
#include "xks/sigv4/verifier.h"

namespace xks::sigv4 {
namespace {

const Credential kCredential{"AKIACURLCURLCURLCURL2345",
                             "curlSecret+curlSecret/curlSecret0123456789abc"};

// Accepts one HTTP/1.1 request on 127.0.0.1, answers 200 and returns what was received.
class LoopbackCapture {
 public:
  LoopbackCapture() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
  }
  ~LoopbackCapture() { ::close(listener_); }
  LoopbackCapture(const LoopbackCapture&) = delete;
  LoopbackCapture& operator=(const LoopbackCapture&) = delete;

  int port() const { return port_; }

  // The raw request bytes, or empty after 10 s without a complete request.
  std::string capture() {
    pollfd ready{listener_, POLLIN, 0};
    if (::poll(&ready, 1, 10'000) != 1)
      return {};
    int connection = ::accept(listener_, nullptr, nullptr);
    std::string received;
    char buffer[4096];
    while (!complete(received)) {
      pollfd readable{connection, POLLIN, 0};
      if (::poll(&readable, 1, 10'000) != 1)
        break;
      ssize_t n = ::read(connection, buffer, sizeof buffer);
      if (n <= 0)
        break;
      received.append(buffer, static_cast<std::size_t>(n));
    }
    std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!::write(connection, answer.data(), answer.size());
    ::close(connection);
    return received;
  }

 private:
  static bool complete(const std::string& received) {
    std::size_t end = received.find("\r\n\r\n");
    if (end == std::string::npos)
      return false;
    std::size_t at = received.find("Content-Length: ");
    std::size_t length = at < end ? std::stoul(received.substr(at + 16)) : 0;
    return received.size() >= end + 4 + length;
  }

  int listener_ = -1;
  int port_ = 0;
};

// Splits raw HTTP/1.1 bytes into the parts SigV4 covers.
test::OwnedRequest parse_http(const std::string& raw) {
  test::OwnedRequest request;
  std::size_t head_end = raw.find("\r\n\r\n");
  std::string head = raw.substr(0, head_end);
  request.body = raw.substr(head_end + 4);
  std::size_t line_end = head.find("\r\n");
  std::string request_line = head.substr(0, line_end);
  request.method = request_line.substr(0, request_line.find(' '));
  std::size_t target = request.method.size() + 1;
  request.path = request_line.substr(target, request_line.rfind(' ') - target);
  for (std::size_t at = line_end + 2; at < head.size();) {
    std::size_t next = head.find("\r\n", at);
    if (next == std::string::npos)
      next = head.size();
    std::string line = head.substr(at, next - at);
    std::size_t colon = line.find(':');
    std::size_t value = line.find_first_not_of(' ', colon + 1);
    request.headers.emplace_back(line.substr(0, colon),
                                 value == std::string::npos ? "" : line.substr(value));
    at = next + 2;
  }
  return request;
}

test::OwnedRequest send_with_curl(const std::string& region, const std::string& path,
                                  const std::string& body) {
  LoopbackCapture capture;
  std::string command = "curl --silent --show-error --max-time 10 --aws-sigv4 'aws:amz:" + region +
                        ":kms-xks-proxy' --user '" + kCredential.access_key_id + ":" +
                        kCredential.secret_access_key +
                        "' -H 'Content-Type: application/json' --data-binary '" + body +
                        "' http://127.0.0.1:" + std::to_string(capture.port()) + path;
  auto curl = std::async(std::launch::async, [command] { return test::run_command(command); });
  std::string raw = capture.capture();
  EXPECT_EQ(curl.get().exit_code, 0);
  EXPECT_FALSE(raw.empty()) << "curl sent nothing";
  return parse_http(raw);
}

std::string header(const test::OwnedRequest& request, std::string_view name) {
  for (const auto& [n, value] : request.headers) {
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        })) {
      return value;
    }
  }
  return {};
}

const std::string kBody =
    R"({"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/alice",)"
    R"("kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae","kmsOperation":"Encrypt",)"
    R"("kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/1"},"plaintext":"SGVsbG8=",)"
    R"("encryptionAlgorithm":"AES_GCM"})";

TEST(CurlCrossCheck, CurlSignedRequestVerifies) {
  test::OwnedRequest request =
      send_with_curl("us-east-1", "/tenant-a/kms/xks/v1/keys/key-1/encrypt", kBody);
  EXPECT_NE(header(request, "authorization").find("SignedHeaders=content-type;host;x-amz-date"),
            std::string::npos)
      << header(request, "authorization");
  EXPECT_NE(header(request, "host").find(':'), std::string::npos) << "port expected in Host";

  Verifier verifier({kCredential}, {"us-east-1"});
  auto result = verifier.verify(request.view());
  ASSERT_TRUE(result.has_value()) << failure_name(result.error());
  EXPECT_EQ(result->get().access_key_id, kCredential.access_key_id);
}

TEST(CurlCrossCheck, CurlSignedRequestWithTamperedContentTypeFails) {
  test::OwnedRequest request = send_with_curl("eu-west-3", "/kms/xks/v1/health", "{}");
  Verifier verifier({kCredential}, {"eu-west-3"});
  ASSERT_TRUE(verifier.verify(request.view()).has_value());
  request.set_header("Content-Type", "text/plain");
  auto result = verifier.verify(request.view());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error(), Failure::kSignatureMismatch);
}

TEST(CurlCrossCheck, CurlSignedRequestForAnotherRegionFails) {
  test::OwnedRequest request = send_with_curl("us-west-2", "/kms/xks/v1/health", "{}");
  Verifier verifier({kCredential}, {"us-east-1"});
  auto result = verifier.verify(request.view());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error(), Failure::kRegionNotAllowed);
}

}  // namespace
}  // namespace xks::sigv4
