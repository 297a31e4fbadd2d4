// The audit log: one JSON line per record, each line carrying the SHA-256 of its content, which
// includes the previous line's hash ("prev"), so a deleted, reordered or edited line is found
// by `xks-proxy audit verify`. Lines are written by a background thread from a bounded queue:
// a full queue drops (and counts) the record, or — with on_full = reject — the proxy refuses
// requests it could not audit. What a record says is the caller's (for XKS requests, see
// xks/audit_record.h); the log adds the chain. Plaintext, keys and secrets are never logged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "xks/proxy/config/ops_config.h"
#include "xks/proxy/ops/metrics.h"

namespace xks::proxy {

class AuditLog {
 public:
  // Registers xks_audit_records_dropped_total in `registry`.
  AuditLog(AuditConfig config, metrics::Registry& registry);
  ~AuditLog();  // writes what is queued, then stops
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Holds a place in the queue for a request about to be served; false when full.
  bool reserve();
  // Queues a record into a reserved place: JSON object members, each followed by a comma
  // (built with append_json_field), to which the log appends "prev" and "chain".
  void submit(std::string fields);
  // Counts a record that found no place.
  void dropped() { dropped_->inc(); }
  // Reopens the file (after logrotate moved it); the chain continues into the new file.
  void reopen();

  const AuditConfig& config() const { return config_; }

 private:
  void run();
  bool open_output();

  AuditConfig config_;
  metrics::Counter* dropped_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::atomic<std::size_t> reserved_{0};  // places held, queued or not: no lock to reserve
  bool reopen_ = false;
  bool stopping_ = false;
  std::FILE* output_ = nullptr;
  std::string previous_chain_;
  std::thread writer_;
};

// The line for `fields` whose predecessor's hash is `previous_chain`; sets `chain` to its hash.
std::string audit_line(std::string_view fields, const std::string& previous_chain,
                       std::string& chain);

// Appends `"name":"value",` with the value escaped for JSON; and `"name":value,`.
void append_json_field(std::string& out, std::string_view name, std::string_view value);
void append_json_number(std::string& out, std::string_view name, long value);
// `time` as an RFC 3339 UTC timestamp with microseconds, e.g. 2026-11-29T10:00:00.000001Z.
std::string utc_timestamp(std::chrono::system_clock::time_point time);

struct AuditVerification {
  std::size_t lines = 0;
  std::size_t first_bad_line = 0;  // 1-based; 0 when every line checks out
  std::string reason;
};

// Checks every line's hash and its link to the line before. The first line's "prev" is taken
// as given (it links to the previous, rotated file).
AuditVerification verify_audit_file(const std::string& path);

}  // namespace xks::proxy
