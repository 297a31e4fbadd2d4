// Line edits of the configuration file.
#include "xks/proxy/config/config_edit.h"

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <vector>

namespace xks::proxy {

namespace {

constexpr std::string_view kBlockKeys[] = {"blocked", "blocked_by", "blocked_at", "blocked_reason"};

// A TOML basic string.
std::string quoted(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escaped[7];
      std::snprintf(escaped, sizeof escaped, "\\u%04X",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// 2026-11-29T19:00:00Z
std::string rfc3339(std::chrono::sys_seconds at) {
  auto day = std::chrono::floor<std::chrono::days>(at);
  std::chrono::year_month_day date(day);
  std::chrono::hh_mm_ss time(at - day);
  char out[32];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return out;
}

}  // namespace

tl::expected<std::string, std::string> with_keystore_block(std::string_view text,
                                                           const std::string& source,
                                                           const std::string& prefix,
                                                           const BlockConfig& block) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    return tl::unexpected(source + ":" + std::to_string(error.source().begin.line) + ": " +
                          std::string(error.description()));
  }
  const toml::array* stores = root["keystore"].as_array();
  const toml::table* store = nullptr;
  for (std::size_t i = 0; stores != nullptr && i < stores->size(); ++i) {
    const toml::table* candidate = stores->get(i)->as_table();
    if (candidate != nullptr && (*candidate)["prefix"].value_or(std::string()) == prefix)
      store = candidate;
  }
  if (store == nullptr)
    return tl::unexpected(source + ": no [[keystore]] has prefix = \"" + prefix + "\"");
  if (store->is_inline())
    return tl::unexpected(source + ": the key store is an inline table: edit it by hand");
  std::set<std::uint32_t> drop;  // 1-based lines
  for (std::string_view key : kBlockKeys) {
    if (const toml::node* node = store->get(key)) {
      if (node->source().begin.line != node->source().end.line)
        return tl::unexpected(source + ":" + std::to_string(node->source().begin.line) + ": " +
                              std::string(key) + " spans several lines: edit it by hand");
      drop.insert(node->source().begin.line);
    }
  }
  std::string lines;
  if (block.blocked) {
    lines += "blocked = true\n";
    lines += "blocked_by = " + quoted(block.by) + "\n";
    if (block.at)
      lines += "blocked_at = " + rfc3339(*block.at) + "\n";
    lines += "blocked_reason = " + quoted(block.reason) + "\n";
  }
  // The [[keystore]] header is where the table's source begins.
  const std::uint32_t header = store->source().begin.line;
  std::string out;
  out.reserve(text.size() + lines.size());
  std::uint32_t line = 1;
  for (std::size_t start = 0; start < text.size(); ++line) {
    std::size_t end = text.find('\n', start);
    std::size_t next = end == std::string_view::npos ? text.size() : end + 1;
    if (!drop.contains(line)) {
      out.append(text.substr(start, next - start));
      if (end == std::string_view::npos && line == header)
        out += '\n';
    }
    if (line == header)
      out += lines;
    start = next;
  }
  // What was written must read back as asked (it may not: a value that is not UTF-8, a layout
  // the line edit does not know); otherwise nothing is written and the operator is told.
  try {
    toml::table edited = toml::parse(out, source);
    const toml::array* edited_stores = edited["keystore"].as_array();
    for (std::size_t i = 0; edited_stores != nullptr && i < edited_stores->size(); ++i) {
      const toml::table* table = edited_stores->get(i)->as_table();
      if (table == nullptr || (*table)["prefix"].value_or(std::string()) != prefix)
        continue;
      bool same =
          (*table)["blocked"].value_or(false) == block.blocked &&
          (*table)["blocked_by"].value_or(std::string()) == (block.blocked ? block.by : "") &&
          (*table)["blocked_reason"].value_or(std::string()) == (block.blocked ? block.reason : "");
      if (same)
        return out;
    }
  } catch (const toml::parse_error&) {
  }
  return tl::unexpected(source + ": the edit does not read back as intended (is --by or " +
                        "--reason valid UTF-8?): edit the key store by hand");
}

}  // namespace xks::proxy
