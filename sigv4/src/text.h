// Character classes and small text helpers shared by the parser and the canonicaliser.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace xks::sigv4::detail {

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_lower(char c) {
  return c >= 'a' && c <= 'z';
}
constexpr bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
constexpr bool is_lower_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}
// Whitespace as botocore's str.split() sees it in header values (obs-fold included).
constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
constexpr char to_lower(char c) {
  return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
}

// A header name, in any case, equals a lower-case name.
constexpr bool name_equals(std::string_view name, std::string_view lower_name) {
  if (name.size() != lower_name.size())
    return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (to_lower(name[i]) != lower_name[i])
      return false;
  }
  return true;
}

template <typename Predicate>
constexpr bool all_of(std::string_view text, Predicate predicate) {
  for (char c : text) {
    if (!predicate(c))
      return false;
  }
  return true;
}

constexpr std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

// The value of a run of decimal digits (the caller checked they are digits; at most 9).
constexpr int decimal(std::string_view digits) {
  int value = 0;
  for (char c : digits)
    value = value * 10 + (c - '0');
  return value;
}

// "yyyymmdd" naming a real calendar day.
inline std::optional<std::chrono::sys_days> parse_day(std::string_view date) {
  if (date.size() != 8 || !all_of(date, is_digit))
    return std::nullopt;
  std::chrono::year_month_day day{
      std::chrono::year{decimal(date.substr(0, 4))},
      std::chrono::month{static_cast<unsigned>(decimal(date.substr(4, 2)))},
      std::chrono::day{static_cast<unsigned>(decimal(date.substr(6, 2)))}};
  if (!day.ok())
    return std::nullopt;
  return std::chrono::sys_days{day};
}

}  // namespace xks::sigv4::detail
