// Signs requests the way AWS KMS signs its calls to an external key store proxy. Used by
// xks-load and the tests; it shares every canonicalisation step with the Verifier.
#pragma once

#include <string>
#include <string_view>

#include "xks/sigv4/credential.h"
#include "xks/sigv4/request.h"
#include "xks/sigv4/signing_key.h"

namespace xks::sigv4 {

class Signer {
 public:
  Signer(Credential credential, std::string region, std::string service);

  // The Authorization header value for `request`. Every header the request carries is
  // signed; they must include host and an x-amz-date equal to `amz_date`.
  std::string authorization(const Request& request, std::string_view amz_date) const;

 private:
  Credential credential_;
  std::string region_;
  std::string service_;
  mutable SigningKeyCache keys_;
};

}  // namespace xks::sigv4
