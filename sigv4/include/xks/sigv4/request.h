// The parts of an HTTP request that AWS Signature Version 4 covers. Views only: the
// caller owns the bytes for as long as a sign or verify call runs.
#pragma once

#include <span>
#include <string_view>

namespace xks::sigv4 {

struct Header {
  std::string_view name;  // any case, as received
  std::string_view value;
};

struct Request {
  std::string_view method;
  std::string_view path;   // raw path as sent, without the query
  std::string_view query;  // raw query as sent, without '?'; XKS requests have none
  std::span<const Header> headers;
  std::string_view body;
};

}  // namespace xks::sigv4
