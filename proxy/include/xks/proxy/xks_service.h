// The four XKS APIs over the HSM layer, in the order of checks of DESIGN.md: route (404 before
// authentication), SigV4 (401), method (405), body (400), key allow-list (404), then the HSM
// with the request's deadline. Blocking: transports call it off their I/O threads.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "xks/hsm/hsm_health.h"
#include "xks/hsm/key_service.h"
#include "xks/proxy/http_message.h"
#include "xks/sigv4/verifier.h"

namespace xks::proxy {

struct KeyStore {
  std::string prefix;  // "" or "/name[/name...]", without "/kms/xks/v1"
  std::shared_ptr<const sigv4::Verifier> verifier;
  std::optional<std::unordered_set<std::string>> allowed_key_ids;  // nullopt: every key
};

struct ProxyIdentity {
  int fleet_size = 1;
  std::string vendor = "xks-proxy project";
  std::string model = "xks-proxy";
};

class XksService {
 public:
  using Deadline = hsm::KeyService::Deadline;

  XksService(std::vector<KeyStore> key_stores, hsm::KeyService& keys, hsm::HsmHealth& health,
             ProxyIdentity identity);

  HttpResponse handle(const HttpRequest& request, Deadline deadline) const;

 private:
  std::vector<KeyStore> key_stores_;
  std::vector<std::string> prefixes_;
  hsm::KeyService& keys_;
  hsm::HsmHealth& health_;
  ProxyIdentity identity_;
};

}  // namespace xks::proxy
