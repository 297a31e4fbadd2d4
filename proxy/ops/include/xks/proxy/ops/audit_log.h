// The audit log: one JSON line per XKS request, each line carrying the SHA-256 of its content,
// which includes the previous line's hash ("prev"), so a deleted, reordered or edited line is
// found by `xks-proxy audit verify`. Lines are written by a background thread from a bounded
// queue: a full queue drops (and counts) the record, or — with on_full = reject — the proxy
// refuses requests it could not audit. Plaintext, keys and secrets are never part of a record.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "xks/proxy/config/config.h"
#include "xks/proxy/xks/request_metadata.h"

namespace xks::proxy {

struct AuditRecord {
  std::chrono::system_clock::time_point time;
  RequestMetadata metadata;
  std::string keystore;
  std::string key_id;
  std::string operation;
  std::string outcome;  // ok | error
  std::string error_name;
  int status = 0;
  long latency_us = 0;
  std::string hsm_id;
  std::string client_subject;
};

class AuditLog {
 public:
  // `on_drop` runs (on the caller's thread) for every record the full queue turned away.
  AuditLog(AuditConfig config, std::function<void()> on_drop);
  ~AuditLog();  // writes what is queued, then stops
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Holds a place in the queue for a request about to be served; false when full.
  bool reserve();
  // Queues a record into a reserved place.
  void submit(AuditRecord record);
  // Records that found no place (counted through on_drop).
  void dropped();
  // Reopens the file (after logrotate moved it); the chain continues into the new file.
  void reopen();

  const AuditConfig& config() const { return config_; }

 private:
  void run();
  bool open_output();

  AuditConfig config_;
  std::function<void()> on_drop_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<AuditRecord> queue_;
  std::atomic<std::size_t> reserved_{0};  // places held, queued or not: no lock to reserve
  bool reopen_ = false;
  bool stopping_ = false;
  std::FILE* output_ = nullptr;
  std::string previous_chain_;
  std::thread writer_;
};

// The line for `record` whose predecessor's hash is `previous_chain`; sets `chain` to its hash.
std::string audit_line(const AuditRecord& record, const std::string& previous_chain,
                       std::string& chain);

struct AuditVerification {
  std::size_t lines = 0;
  std::size_t first_bad_line = 0;  // 1-based; 0 when every line checks out
  std::string reason;
};

// Checks every line's hash and its link to the line before. The first line's "prev" is taken
// as given (it links to the previous, rotated file).
AuditVerification verify_audit_file(const std::string& path);

}  // namespace xks::proxy
