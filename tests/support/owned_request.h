// An HTTP request that owns its bytes, viewable as the sigv4::Request the library signs and
// verifies. Test and benchmark helper.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "xks/sigv4/request.h"

namespace xks::test {

struct OwnedRequest {
  OwnedRequest() = default;
  OwnedRequest(std::string method_, std::string path_, std::string query_,
               std::vector<std::pair<std::string, std::string>> headers_, std::string body_)
      : method(std::move(method_)),
        path(std::move(path_)),
        query(std::move(query_)),
        headers(std::move(headers_)),
        body(std::move(body_)) {}

  std::string method = "POST";
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  void set_header(const std::string& name, std::string value) {
    for (auto& [existing, existing_value] : headers) {
      if (existing == name) {
        existing_value = std::move(value);
        return;
      }
    }
    headers.emplace_back(name, std::move(value));
  }

  void remove_header(const std::string& name) {
    std::erase_if(headers, [&](const auto& header) { return header.first == name; });
  }

  // Views stay valid until this object or its headers change.
  sigv4::Request view() {
    views_.clear();
    for (const auto& [name, value] : headers)
      views_.push_back({name, value});
    return {method, path, query, views_, body};
  }

 private:
  std::vector<sigv4::Header> views_;
};

}  // namespace xks::test
