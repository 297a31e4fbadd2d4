// What an operator reads: the audit log ([audit]) and the operational log ([log]). Plain values,
// parsed by load_config (config.h).
#pragma once

#include <cstddef>
#include <string>

namespace xks::proxy {

struct AuditConfig {
  std::string path;  // "" off, "-" standard output, else a file appended to
  enum class OnFull { kDrop, kReject } on_full = OnFull::kDrop;
  std::size_t queue_size = 65536;
};

struct LogConfig {
  bool json = false;           // operational log as JSON lines instead of text
  std::string level = "info";  // trace, debug, info, warn, error
};

}  // namespace xks::proxy
