// A SigV4 credential: an access key id and its secret.
#pragma once

#include <string>

namespace xks::sigv4 {

struct Credential {
  std::string access_key_id;
  std::string secret_access_key;
};

}  // namespace xks::sigv4
