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
  std::string client_address;  // the peer's "address:port" ("[v6]:port" for IPv6)
  // HTTP/2: the connection's other requests go on while this one is served (HTTP/1.1: the
  // connection waits for this answer before it sends anything else).
  bool multiplexed = false;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // always application/json
  // The request proved it holds a credential (its signature verified): the transport then
  // never evicts its connection to make room for others.
  bool authenticated = false;
};

}  // namespace xks::proxy
