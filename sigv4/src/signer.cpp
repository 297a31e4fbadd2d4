// SigV4 signing with the Verifier's canonicalisation.
#include "xks/sigv4/signer.h"

#include <algorithm>
#include <vector>

#include "text.h"
#include "xks/sigv4/canonical.h"

namespace xks::sigv4 {

Signer::Signer(Credential credential, std::string region, std::string service)
    : credential_(std::move(credential)),
      region_(std::move(region)),
      service_(std::move(service)) {}

std::string Signer::authorization(const Request& request, std::string_view amz_date) const {
  std::vector<std::string> names;
  names.reserve(request.headers.size());
  for (const Header& header : request.headers) {
    std::string name(header.name);
    std::transform(name.begin(), name.end(), name.begin(), detail::to_lower);
    if (name != "authorization")
      names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signed_headers;
  for (const std::string& name : names) {
    if (!signed_headers.empty())
      signed_headers.push_back(';');
    signed_headers.append(name);
  }

  std::string_view date = amz_date.substr(0, 8);
  std::string scope = credential_scope(date, region_, service_);
  // Every signed header comes from the request itself, so none can be missing.
  std::string canonical = canonical_request(request, signed_headers).value();
  std::string signature =
      signature_hex(keys_.get(0, credential_.secret_access_key, date, region_, service_),
                    string_to_sign(amz_date, scope, canonical));
  std::string out(kAlgorithm);
  out.append(" Credential=").append(credential_.access_key_id).append("/").append(scope);
  out.append(", SignedHeaders=").append(signed_headers);
  out.append(", Signature=").append(signature);
  return out;
}

}  // namespace xks::sigv4
