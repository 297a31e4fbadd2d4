// Fuzz target: the Authorization parser, the canonicaliser and the whole Verifier on
// arbitrary bytes. Input lines: Authorization value, X-Amz-Date, Host, path, then the body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xks/sigv4/authorization.h"
#include "xks/sigv4/canonical.h"
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

  static const Verifier verifier(
      {{"AKIAZ2345ABCDEFGHIJK", "fuzzSecretfuzzSecretfuzzSecretfuzzSecret1234"}}, {"us-east-1"},
      [] { return std::chrono::system_clock::time_point{std::chrono::seconds{1'795'000'000}}; });
  (void)verifier.verify(request);
  return 0;
}
