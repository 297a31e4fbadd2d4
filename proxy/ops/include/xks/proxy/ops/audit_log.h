// The audit log writer: one JSON line per record, chained as audit_chain.h describes, written by
// a background thread from a bounded queue.
//
// Failures are loud: a file that cannot be opened or written is logged (at most every 10 s),
// counted (xks_audit_write_errors_total, and the records it cost in
// xks_audit_records_unwritten_total), shown as xks_audit_writable 0, and retried every second;
// once writing works again a "gap" record says how many records were lost. With on_full =
// reject the log is mandatory: reserve() refuses while the queue is full or the file is not
// writable, ready() is false meanwhile, and a request's answer waits for its record (the writer
// wakes at once for such records, and fsyncs first when fsync is due).
// What a record says is the caller's (for XKS requests, xks/audit_record.h); plaintext, keys and
// secrets are never logged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tl/expected.hpp>

#include "xks/proxy/config/ops_config.h"
#include "xks/proxy/ops/audit_chain.h"
#include "xks/proxy/ops/metrics.h"

namespace xks::proxy {

class AuditLog {
 public:
  // Reads the key, checks that the file can be opened for appending (when it is a regular file
  // or absent), registers the audit metrics and starts the writer, which continues the chain of
  // an existing file and writes a start record. `version` goes into start records.
  static tl::expected<std::unique_ptr<AuditLog>, std::string> open(AuditConfig config,
                                                                   metrics::Registry& registry,
                                                                   std::string version);
  ~AuditLog();  // writes what is queued and a stop record, then closes
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  enum class Place : std::uint8_t { kReserved, kFull, kNotWritable };
  // Holds a place in the queue for a request about to be served. kNotWritable only with
  // on_full = reject (with drop, records queue and are counted if they cannot be written).
  Place reserve();
  // Called from the writer thread once the record is written (true) or could not be (false).
  using Written = std::function<void(bool written)>;
  // Queues a record into a reserved place: JSON object members, each followed by a comma
  // (built with append_json_field), to which the chain adds seq, prev and chain.
  void submit(std::string fields, Written written = {});
  // For a request that failed authentication (it holds no place): true when its record is to
  // be written (this second's unauthenticated_per_second quota lasts, and a place was taken
  // for it: submit() it); false when it is only counted, and summarised in a suppressed record.
  bool sample_unauthenticated();
  // Counts a request that found no place.
  void dropped();
  // Queues a record of `kind` (an operator's change: a configuration reload, a key store
  // blocked or unblocked) with these fields (as for submit()). Never refused: such records
  // are rare and must not be lost to a busy queue.
  void record_event(std::string_view kind, std::string_view fields);
  // Ends the current file with a rotate record and reopens the path (after logrotate moved
  // the file); the chain continues into the new file. Nothing happens while the open file is
  // still the one at the path (a SIGHUP for a reload).
  void reopen();
  // False while on_full = reject and the file is not writable.
  bool ready() const;

  const AuditConfig& config() const { return config_; }

 private:
  struct Entry {
    std::string fields;
    Written written;
    bool counts = true;  // a request's record (not a control record)
  };
  struct Metrics {
    metrics::Counter* dropped;
    metrics::Counter* write_errors;
    metrics::Counter* unwritten;
    metrics::Counter* suppressed;
    metrics::Gauge* writable;
    metrics::Gauge* sequence;
  };

  AuditLog(AuditConfig config, std::optional<AuditKey> key, Metrics metrics, std::string version);
  void run();
  // Writer thread helpers.
  bool ensure_open();
  void close_output(std::string_view kind);
  bool write_batch(std::deque<Entry>& batch);
  // fsyncs when due (or `force`); false when that failed (the file is then closed).
  bool maybe_fsync(std::size_t records, bool force);
  void close_fd();
  // Whether the open file is still the one at config_.path.
  bool still_at_path() const;
  std::string control_fields(std::string_view kind, std::string_view extra = {}) const;
  void report_failure(const std::string& what, int error);

  const AuditConfig config_;
  const std::optional<AuditKey> key_;
  const Metrics metrics_;
  const std::string version_;
  const bool mandatory_;  // on_full = reject

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Entry> queue_;
  std::atomic<std::size_t> reserved_{0};  // places held, queued or not: no lock to reserve
  std::atomic<bool> writable_{true};
  bool reopen_ = false;
  bool stopping_ = false;
  bool urgent_ = false;  // a record someone waits for is queued
  // Unauthenticated records this second, and those suppressed since the last summary.
  std::int64_t quota_second_ = -1;
  std::size_t quota_used_ = 0;
  std::size_t suppressed_ = 0;

  // The writer thread's own state.
  AuditChain chain_;
  int fd_ = -1;
  bool fd_is_regular_ = false;
  std::size_t lost_ = 0;  // records not written since the last successful write
  std::chrono::steady_clock::time_point next_open_;
  std::chrono::steady_clock::time_point last_warning_;
  std::chrono::steady_clock::time_point last_summary_;
  std::chrono::steady_clock::time_point last_fsync_;
  std::size_t unsynced_ = 0;
  std::thread writer_;
};

}  // namespace xks::proxy
