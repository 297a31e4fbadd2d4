// SigV4 verification of XKS requests.
#include "xks/sigv4/verifier.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "text.h"
#include "xks/sigv4/authorization.h"
#include "xks/sigv4/canonical.h"

namespace xks::sigv4 {

namespace {

bool names_equal(std::string_view name, std::string_view lower_name) {
  return name.size() == lower_name.size() &&
         std::equal(name.begin(), name.end(), lower_name.begin(),
                    [](char a, char b) { return detail::to_lower(a) == b; });
}

// The only header called `lower_name`, or null if there is none or more than one.
const Header* single_header(const Request& request, std::string_view lower_name,
                            std::size_t& count) {
  const Header* found = nullptr;
  count = 0;
  for (const Header& header : request.headers) {
    if (!names_equal(header.name, lower_name))
      continue;
    ++count;
    found = &header;
  }
  return count == 1 ? found : nullptr;
}

bool lists_header(std::string_view signed_headers, std::string_view name) {
  while (true) {
    std::size_t semicolon = signed_headers.find(';');
    if (signed_headers.substr(0, semicolon) == name)
      return true;
    if (semicolon == std::string_view::npos)
      return false;
    signed_headers.remove_prefix(semicolon + 1);
  }
}

}  // namespace

Verifier::Verifier(std::vector<Credential> credentials, std::vector<std::string> allowed_regions,
                   Clock clock)
    : credentials_(std::move(credentials)),
      allowed_regions_(std::move(allowed_regions)),
      clock_(std::move(clock)) {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1)
    throw std::runtime_error("no randomness for the SigV4 decoy secret");
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char byte : random) {
    decoy_.secret_access_key.push_back(kHex[byte >> 4]);
    decoy_.secret_access_key.push_back(kHex[byte & 0xf]);
  }
  OPENSSL_cleanse(random, sizeof random);
  for (auto it = credentials_.begin(); it != credentials_.end(); ++it) {
    if (find_credential(it->access_key_id) != &*it) {
      throw std::invalid_argument("SigV4 access key ids must be unique within a key store");
    }
  }
}

const Credential* Verifier::find_credential(std::string_view access_key_id) const {
  auto it = std::find_if(credentials_.begin(), credentials_.end(),
                         [&](const Credential& c) { return c.access_key_id == access_key_id; });
  return it == credentials_.end() ? nullptr : &*it;
}

tl::expected<std::reference_wrapper<const Credential>, Failure> Verifier::verify(
    const Request& request) const {
  std::size_t count = 0;
  const Header* authorization_header = single_header(request, "authorization", count);
  if (count == 0)
    return tl::unexpected(Failure::kMissingAuthorization);
  if (count > 1)
    return tl::unexpected(Failure::kDuplicateAuthorization);

  auto authorization = parse_authorization(authorization_header->value);
  if (!authorization)
    return tl::unexpected(authorization.error());
  if (authorization->service != kXksService)
    return tl::unexpected(Failure::kWrongService);
  const Credential* credential = find_credential(authorization->access_key_id);
  bool known = credential != nullptr;
  if (!known)
    credential = &decoy_;
  if (std::find(allowed_regions_.begin(), allowed_regions_.end(), authorization->region) ==
      allowed_regions_.end()) {
    return tl::unexpected(Failure::kRegionNotAllowed);
  }
  if (!lists_header(authorization->signed_headers, "host")) {
    return tl::unexpected(Failure::kHostNotSigned);
  }
  if (!lists_header(authorization->signed_headers, "x-amz-date")) {
    return tl::unexpected(Failure::kDateNotSigned);
  }

  const Header* date_header = single_header(request, "x-amz-date", count);
  if (date_header == nullptr)
    return tl::unexpected(Failure::kMissingDate);
  std::string_view amz_date = date_header->value;
  auto signed_at = parse_amz_date(amz_date);
  if (!signed_at)
    return tl::unexpected(Failure::kMalformedDate);
  if (amz_date.substr(0, 8) != authorization->date) {
    return tl::unexpected(Failure::kScopeDateMismatch);
  }
  auto skew = clock_() - *signed_at;
  if (skew > kMaxClockSkew || skew < -kMaxClockSkew)
    return tl::unexpected(Failure::kClockSkew);

  auto canonical = canonical_request(request, authorization->signed_headers);
  if (!canonical)
    return tl::unexpected(canonical.error());
  std::size_t credential_number =
      known ? static_cast<std::size_t>(credential - credentials_.data()) : credentials_.size();
  SigningKey key = keys_.get(credential_number, credential->secret_access_key, authorization->date,
                             authorization->region, authorization->service);
  std::string expected = signature_hex(
      key, string_to_sign(
               amz_date,
               credential_scope(authorization->date, authorization->region, authorization->service),
               *canonical));
  bool matches =
      CRYPTO_memcmp(expected.data(), authorization->signature.data(), expected.size()) == 0;
  if (!known)
    return tl::unexpected(Failure::kUnknownAccessKeyId);
  if (!matches)
    return tl::unexpected(Failure::kSignatureMismatch);
  return std::cref(*credential);
}

}  // namespace xks::sigv4
