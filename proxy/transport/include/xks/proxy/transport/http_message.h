// The transport-neutral request and response: HTTP/1.1 and HTTP/2 both produce and consume
// these, so the XKS handlers never know which protocol carried a request.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace xks::proxy {

struct HttpRequest {
  std::string method;
  std::string target;                                        // as sent: path and optional query
  std::vector<std::pair<std::string, std::string>> headers;  // HTTP/2's :authority as "host"
  std::string body;
  std::string client_subject;  // the mTLS client certificate's subject, if any
};

struct HttpResponse {
  int status = 200;
  std::string body;  // always application/json
};

}  // namespace xks::proxy
