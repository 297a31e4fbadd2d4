// Verifies the SigV4 signature of a request against one key store's credentials.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "xks/sigv4/credential.h"
#include "xks/sigv4/failure.h"
#include "xks/sigv4/request.h"
#include "xks/sigv4/signing_key.h"

namespace xks::sigv4 {

inline constexpr std::string_view kXksService = "kms-xks-proxy";

class Verifier {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // XKS spec: reject requests more than five minutes early or late.
  static constexpr std::chrono::seconds kMaxClockSkew{300};

  // Several credentials may be live at once (rotation); each access key id must be unique.
  // `allowed_regions` lists the regions KMS may sign for (the key store's region).
  Verifier(std::vector<Credential> credentials, std::vector<std::string> allowed_regions,
           Clock clock = &std::chrono::system_clock::now);

  // The credential that signed the request (valid as long as this Verifier), or why the
  // request is not authentic. An unknown access key id costs the same work as a wrong
  // signature (a decoy secret is checked in its place), so timing does not tell which ids exist.
  tl::expected<std::reference_wrapper<const Credential>, Failure> verify(
      const Request& request) const;

  // Whether this access key id is one of the credentials (not secret: ids travel in clear).
  bool knows(std::string_view access_key_id) const {
    return find_credential(access_key_id) != nullptr;
  }

 private:
  const Credential* find_credential(std::string_view access_key_id) const;

  std::vector<Credential> credentials_;
  Credential decoy_;  // random, never matches: stands in for unknown access key ids
  std::vector<std::string> allowed_regions_;
  Clock clock_;
  mutable SigningKeyCache keys_;
};

}  // namespace xks::sigv4
