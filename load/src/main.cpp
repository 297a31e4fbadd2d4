// xks-load: a load generator that signs every request the way AWS KMS does (SigV4,
// host;x-amz-date, a fresh kmsRequestId each time) over N keep-alive TLS connections, either as
// fast as they go (closed loop) or at a fixed rate (open loop, latency from the intended send
// time), bounded by time and/or count; it reports throughput, errors and latency percentiles
// from a log-linear histogram, optionally as JSON.
#include <openssl/rand.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "latency_histogram.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "localhost";
  std::string port = "8443";
  std::string prefix = "/example";
  std::string ca_file;
  std::string access_key_id;
  std::string secret_file;
  std::string region = "us-east-1";
  std::string key_id = "foo";
  std::string operation = "encrypt";  // encrypt | metadata | health
  std::size_t plaintext_bytes = 32;
  unsigned connections = 8;
  double seconds = 10;
  std::uint64_t max_requests = 0;  // 0: bounded by time only
  double rate = 0;                 // open loop: total requests per second; 0: closed loop
  std::string json_file;
};

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> data(bytes);
  RAND_bytes(data.data(), static_cast<int>(bytes));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : data) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::string base64(std::size_t bytes) {
  std::vector<unsigned char> data(bytes), out((bytes + 2) / 3 * 4 + 1);
  RAND_bytes(data.data(), static_cast<int>(bytes));
  int length = EVP_EncodeBlock(out.data(), data.data(), static_cast<int>(bytes));
  return {reinterpret_cast<char*>(out.data()), static_cast<std::size_t>(length)};
}

struct Request {
  std::string path;
  std::string body;
};

Request next_request(const Options& options) {
  std::string id = random_hex(16);
  std::string metadata =
      R"({"awsPrincipalArn":"arn:aws:iam::123456789012:user/xks-load",)"
      R"("kmsKeyArn":"arn:aws:kms:)" +
      options.region + R"(:123456789012:key/xks-load","kmsOperation":"Encrypt","kmsRequestId":")" +
      id + "\"}";
  std::string base = options.prefix + "/kms/xks/v1/";
  if (options.operation == "health") {
    return {base + "health", R"({"requestMetadata":{"kmsRequestId":")" + id +
                                 R"(","kmsOperation":"KmsHealthCheck"}})"};
  }
  if (options.operation == "metadata") {
    return {base + "keys/" + options.key_id + "/metadata",
            "{\"requestMetadata\":" + metadata + "}"};
  }
  return {base + "keys/" + options.key_id + "/encrypt",
          "{\"requestMetadata\":" + metadata + R"(,"plaintext":")" +
              base64(options.plaintext_bytes) + R"(","encryptionAlgorithm":"AES_GCM"})"};
}

struct WorkerResult {
  xks::load::LatencyHistogram latency;
  std::map<std::string, std::uint64_t>
      outcomes;  // "200", "400 ValidationException", "transport: ..."
};

// One keep-alive connection, requests back to back until the deadline or the shared budget.
void run_connection(const Options& options, net::ssl::context& tls,
                    const xks::sigv4::Signer& signer, Clock::time_point deadline,
                    std::atomic<std::uint64_t>& budget, WorkerResult& result) {
  net::io_context context;
  beast::ssl_stream<beast::tcp_stream> stream(context, tls);
  auto fail = [&](const std::string& what) { ++result.outcomes["transport: " + what]; };
  try {
    // SNI (SSL_set_tlsext_host_name is a macro with a C cast).
    SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(options.host.c_str()));
    stream.set_verify_callback(net::ssl::host_name_verification(options.host));
    net::ip::tcp::resolver resolver(context);
    beast::get_lowest_layer(stream).connect(resolver.resolve(options.host, options.port));
    stream.handshake(net::ssl::stream_base::client);
  } catch (const std::exception& error) {
    return fail(error.what());
  }
  const std::string host = options.host + ":" + options.port;
  beast::flat_buffer buffer;
  // Open loop: each connection has a schedule, and latency counts from the intended send time,
  // so a slow answer that delays the next request shows up instead of hiding (coordinated
  // omission).
  const bool open_loop = options.rate > 0;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(open_loop ? options.connections / options.rate : 0));
  auto intended = Clock::now();
  while (Clock::now() < deadline) {
    if (open_loop) {
      intended += period;
      if (intended >= deadline)
        break;
      std::this_thread::sleep_until(intended);
    }
    if (options.max_requests != 0 && budget.fetch_add(1) >= options.max_requests)
      break;
    Request next = next_request(options);
    http::request<http::string_body> request(http::verb::post, next.path, 11);
    std::string date = xks::sigv4::format_amz_date(std::chrono::system_clock::now());
    request.set(http::field::host, host);
    request.set("X-Amz-Date", date);
    const xks::sigv4::Header headers[] = {{"host", host}, {"x-amz-date", date}};
    request.set(http::field::authorization,
                signer.authorization({"POST", next.path, "", headers, next.body}, date));
    request.set(http::field::content_type, "application/json");
    request.body() = std::move(next.body);
    request.prepare_payload();
    auto started = open_loop ? intended : Clock::now();
    try {
      http::write(stream, request);
      http::response<http::string_body> response;
      http::read(stream, buffer, response);
      result.latency.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count()));
      std::string outcome = std::to_string(response.result_int());
      if (response.result_int() != 200) {
        auto at = response.body().find("\"errorName\":\"");
        if (at != std::string::npos) {
          outcome +=
              " " + response.body().substr(at + 13, response.body().find('"', at + 13) - at - 13);
        }
      }
      ++result.outcomes[outcome];
      if (!response.keep_alive())
        return;
    } catch (const std::exception& error) {
      return fail(error.what());
    }
  }
  beast::error_code ignored;
  stream.shutdown(ignored);
}

double ms(std::uint64_t nanoseconds) {
  return static_cast<double>(nanoseconds) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"xks-load: SigV4-signing load generator for XKS proxies"};
  app.add_option("--host", options.host)->capture_default_str();
  app.add_option("--port", options.port)->capture_default_str();
  app.add_option("--prefix", options.prefix, "Key store URI prefix")->capture_default_str();
  app.add_option("--cacert", options.ca_file, "CA to verify the proxy")->required();
  app.add_option("--access-key-id", options.access_key_id)->required();
  app.add_option("--secret-file", options.secret_file, "File holding the SigV4 secret")->required();
  app.add_option("--region", options.region)->capture_default_str();
  app.add_option("--key", options.key_id, "External key id")->capture_default_str();
  app.add_option("--operation", options.operation)
      ->check(CLI::IsMember({"encrypt", "metadata", "health"}))
      ->capture_default_str();
  app.add_option("--plaintext-bytes", options.plaintext_bytes)->capture_default_str();
  app.add_option("--connections", options.connections)
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  app.add_option("--seconds", options.seconds, "Run time bound")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--requests", options.max_requests, "Request count bound (0: none)")
      ->capture_default_str();
  app.add_option("--rate", options.rate,
                 "Open loop at this many requests per second in total (0: closed loop)")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--json", options.json_file, "Write the result as JSON");
  CLI11_PARSE(app, argc, argv);

  std::ifstream secret_file(options.secret_file);
  std::string secret;
  std::getline(secret_file, secret);
  if (secret.empty()) {
    std::cerr << "xks-load: cannot read the secret from " << options.secret_file << "\n";
    return 2;
  }
  xks::sigv4::Signer signer({options.access_key_id, secret}, options.region, "kms-xks-proxy");
  net::ssl::context tls(net::ssl::context::tls_client);
  tls.load_verify_file(options.ca_file);
  tls.set_verify_mode(net::ssl::verify_peer);

  auto started = Clock::now();
  auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(options.seconds));
  std::atomic<std::uint64_t> budget{0};
  std::vector<WorkerResult> results(options.connections);
  std::vector<std::thread> workers;
  for (unsigned i = 0; i < options.connections; ++i) {
    workers.emplace_back(
        [&, i] { run_connection(options, tls, signer, deadline, budget, results[i]); });
  }
  for (auto& worker : workers)
    worker.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

  WorkerResult total;
  for (const auto& result : results) {
    total.latency.merge(result.latency);
    for (const auto& [outcome, count] : result.outcomes)
      total.outcomes[outcome] += count;
  }
  std::uint64_t ok = total.outcomes.count("200") ? total.outcomes["200"] : 0;
  std::uint64_t requests = 0;
  for (const auto& [outcome, count] : total.outcomes)
    requests += count;
  const xks::load::LatencyHistogram& h = total.latency;
  std::cout << "xks-load: " << requests << " requests in " << elapsed << " s on "
            << options.connections << " connections: " << static_cast<double>(requests) / elapsed
            << " req/s, " << requests - ok << " not 200\n";
  std::cout << "latency ms: p50 " << ms(h.quantile(0.5)) << "  p90 " << ms(h.quantile(0.9))
            << "  p99 " << ms(h.quantile(0.99)) << "  p99.9 " << ms(h.quantile(0.999))
            << "  p99.99 " << ms(h.quantile(0.9999)) << "  max " << ms(h.max()) << "\n";
  for (const auto& [outcome, count] : total.outcomes)
    std::cout << "  " << outcome << ": " << count << "\n";
  if (!options.json_file.empty()) {
    std::ofstream json(options.json_file);
    json << "{\"requests\":" << requests << ",\"ok\":" << ok << ",\"seconds\":" << elapsed
         << ",\"rate\":" << static_cast<double>(requests) / elapsed
         << ",\"latency_ms\":{\"p50\":" << ms(h.quantile(0.5)) << ",\"p90\":" << ms(h.quantile(0.9))
         << ",\"p99\":" << ms(h.quantile(0.99)) << ",\"p999\":" << ms(h.quantile(0.999))
         << ",\"p9999\":" << ms(h.quantile(0.9999)) << ",\"max\":" << ms(h.max()) << "}}\n";
  }
  return requests == ok && requests > 0 ? 0 : 1;
}
