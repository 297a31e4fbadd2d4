// Fuzz target: the Authorization parser, the canonicaliser and the whole Verifier on
// arbitrary bytes; then, for the same path, host and body, a request signed by the Signer must
// verify and the same request with its body changed must not. Input lines: Authorization
// value, X-Amz-Date, Host, path, then the body.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "xks/sigv4/authorization.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"
#include "xks/sigv4/verifier.h"

namespace {

std::string_view next_line(std::string_view& input) {
  std::size_t newline = input.find('\n');
  std::string_view line = input.substr(0, newline);
  input.remove_prefix(newline == std::string_view::npos ? input.size() : newline + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::sigv4;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view authorization = next_line(input);
  std::string_view amz_date = next_line(input);
  std::string_view host = next_line(input);
  std::string_view path = next_line(input);

  const Header headers[] = {{"Authorization", authorization},
                            {"X-Amz-Date", amz_date},
                            {"Host", host},
                            {"Content-Type", "application/json"}};
  Request request{"POST", path, "", headers, input};

  if (auto parsed = parse_authorization(authorization)) {
    (void)canonical_request(request, parsed->signed_headers);
  }
  (void)parse_amz_date(amz_date);
  (void)canonical_header_value(host);

  static const Credential credential{"AKIAZ2345ABCDEFGHIJK",
                                     "fuzzSecretfuzzSecretfuzzSecretfuzzSecret1234"};
  static const auto now =
      std::chrono::system_clock::time_point{std::chrono::seconds{1'795'000'000}};
  static const Verifier verifier({credential}, {"us-east-1"}, [] { return now; });
  (void)verifier.verify(request);

  // Structure-aware: whatever the path, host and body, what the Signer signs the Verifier must
  // accept, and the same request with its body changed must be refused.
  static const Signer signer(credential, "us-east-1", std::string(kXksService));
  static const std::string date = format_amz_date(now);
  const Header unsigned_headers[] = {{"Host", host}, {"X-Amz-Date", date}};
  if (auto canonical_path =
          canonical_request({"POST", path, "", unsigned_headers, input}, "host;x-amz-date")) {
    std::string signature = signer.authorization({"POST", path, "", unsigned_headers, input}, date);
    const Header signed_headers[] = {
        {"Host", host}, {"X-Amz-Date", date}, {"Authorization", signature}};
    if (!verifier.verify({"POST", path, "", signed_headers, input}))
      __builtin_trap();
    std::string tampered(input);
    tampered.push_back('x');
    if (verifier.verify({"POST", path, "", signed_headers, tampered}))
      __builtin_trap();
  }
  return 0;
}
