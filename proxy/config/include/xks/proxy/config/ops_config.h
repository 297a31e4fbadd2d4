// What an operator reads: the audit log ([audit]) and the operational log ([log]). Plain values,
// parsed by load_config (config.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace xks::proxy {

struct AuditConfig {
  std::string path;  // "" off, "-" standard output, else a file appended to
  // drop: a request that finds the queue full is served and counted unaudited. reject: auditing
  // is mandatory: such a request is refused, and an answer is sent only once its record is
  // written (a record that cannot be written turns the answer into an error).
  enum class OnFull { kDrop, kReject } on_full = OnFull::kDrop;
  std::size_t queue_size = 65536;
  std::string key_file;  // HMAC-SHA-256 key of the chain; "" unkeyed (plain SHA-256)
  // fsync after this many records, and at least this often while records are unsynced (0: no).
  std::size_t fsync_records = 0;
  std::chrono::milliseconds fsync_interval{0};
  // Requests that fail authentication recorded one by one per second; the rest are counted in
  // one "suppressed" record per second, so that a flood of junk cannot fill the disk.
  std::size_t unauthenticated_per_second = 10;

  bool operator==(const AuditConfig&) const = default;
};

struct LogConfig {
  bool json = false;           // operational log as JSON lines instead of text
  std::string level = "info";  // trace, debug, info, warn, error
};

}  // namespace xks::proxy
