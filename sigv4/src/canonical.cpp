// SigV4 canonical request, credential scope and string to sign.
#include "xks/sigv4/canonical.h"

#include <algorithm>
#include <vector>

#include "digest.h"
#include "text.h"

namespace xks::sigv4 {

using namespace detail;

std::string canonical_query(std::string_view raw_query) {
  std::vector<std::pair<std::string_view, std::string_view>> parameters;
  while (!raw_query.empty()) {
    std::size_t amp = raw_query.find('&');
    std::string_view parameter = raw_query.substr(0, amp);
    raw_query.remove_prefix(amp == std::string_view::npos ? raw_query.size() : amp + 1);
    if (parameter.empty())
      continue;
    std::size_t equals = parameter.find('=');
    parameters.emplace_back(parameter.substr(0, equals),
                            equals == std::string_view::npos ? "" : parameter.substr(equals + 1));
  }
  std::sort(parameters.begin(), parameters.end());
  std::string out;
  for (const auto& [name, value] : parameters) {
    if (!out.empty())
      out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

namespace {

void append_canonical_header_value(std::string& out, std::string_view value) {
  value = trim(value);
  bool in_space = false;
  for (char c : value) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space)
      out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
}

}  // namespace

std::string canonical_header_value(std::string_view value) {
  std::string out;
  append_canonical_header_value(out, value);
  return out;
}

tl::expected<std::string, Failure> canonical_request(const Request& request,
                                                     std::string_view signed_headers) {
  std::string out;
  out.reserve(256 + request.path.size());
  out.append(request.method).push_back('\n');
  out.append(request.path).push_back('\n');
  out.append(canonical_query(request.query)).push_back('\n');

  std::string_view names = signed_headers;
  while (!names.empty()) {
    std::size_t semicolon = names.find(';');
    std::string_view name = names.substr(0, semicolon);
    names.remove_prefix(semicolon == std::string_view::npos ? names.size() : semicolon + 1);
    out.append(name).push_back(':');
    bool found = false;
    for (const Header& header : request.headers) {
      if (!name_equals(header.name, name))
        continue;
      if (found)
        out.push_back(',');
      found = true;
      append_canonical_header_value(out, header.value);
    }
    if (!found)
      return tl::unexpected(Failure::kSignedHeaderMissing);
    out.push_back('\n');
  }
  out.push_back('\n');
  out.append(signed_headers).push_back('\n');
  out.append(sha256_hex(request.body));
  return out;
}

std::string credential_scope(std::string_view date, std::string_view region,
                             std::string_view service) {
  std::string scope;
  scope.reserve(date.size() + region.size() + service.size() + 16);
  scope.append(date).append("/").append(region).append("/").append(service).append("/aws4_request");
  return scope;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string out;
  out.reserve(kAlgorithm.size() + amz_date.size() + scope.size() + 68);
  out.append(kAlgorithm).push_back('\n');
  out.append(amz_date).push_back('\n');
  out.append(scope).push_back('\n');
  out.append(sha256_hex(canonical_request));
  return out;
}

std::string format_amz_date(std::chrono::system_clock::time_point time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto day = std::chrono::floor<std::chrono::days>(seconds);
  std::chrono::year_month_day date{day};
  std::chrono::hh_mm_ss clock{seconds - day};
  auto two = [](std::string& out, long value) {
    out.push_back(static_cast<char>('0' + value / 10));
    out.push_back(static_cast<char>('0' + value % 10));
  };
  std::string out;
  int year = static_cast<int>(date.year());
  two(out, year / 100);
  two(out, year % 100);
  two(out, static_cast<unsigned>(date.month()));
  two(out, static_cast<unsigned>(date.day()));
  out.push_back('T');
  two(out, clock.hours().count());
  two(out, clock.minutes().count());
  two(out, static_cast<long>(clock.seconds().count()));
  out.push_back('Z');
  return out;
}

std::optional<std::chrono::sys_seconds> parse_amz_date(std::string_view amz_date) {
  if (amz_date.size() != 16 || amz_date[8] != 'T' || amz_date[15] != 'Z')
    return std::nullopt;
  std::string_view time = amz_date.substr(9, 6);
  if (!all_of(time, is_digit))
    return std::nullopt;
  auto day = parse_day(amz_date.substr(0, 8));
  int hours = decimal(time.substr(0, 2));
  int minutes = decimal(time.substr(2, 2));
  int seconds = decimal(time.substr(4, 2));
  if (!day || hours > 23 || minutes > 59 || seconds > 59)
    return std::nullopt;
  return std::chrono::sys_seconds{*day} + std::chrono::hours{hours} +
         std::chrono::minutes{minutes} + std::chrono::seconds{seconds};
}

std::string sha256_hex(std::string_view data) {
  return to_hex(sha256(data));
}

}  // namespace xks::sigv4
