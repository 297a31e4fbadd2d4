// The audit log writer.
#include "xks/proxy/ops/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace xks::proxy {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Lines reach the file at most this late; a burst, or a record someone waits for, wakes the
// writer sooner.
constexpr auto kFlushInterval = std::chrono::milliseconds(50);
constexpr std::size_t kWakeAt = 512;
constexpr auto kRetryInterval = std::chrono::seconds(1);
constexpr auto kWarningInterval = std::chrono::seconds(10);
constexpr auto kSummaryInterval = std::chrono::seconds(1);

int open_for_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

// Writes all of `text`; false (errno set) when the descriptor refused some of it.
bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (written == 0) {
      errno = EIO;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

}  // namespace

tl::expected<std::unique_ptr<AuditLog>, std::string> AuditLog::open(AuditConfig config,
                                                                    metrics::Registry& registry,
                                                                    std::string version) {
  std::optional<AuditKey> key;
  if (!config.key_file.empty()) {
    auto read = AuditKey::read(config.key_file);
    if (!read)
      return tl::unexpected(read.error());
    key.emplace(std::move(*read));
  }
  if (config.path != "-") {
    // A file (or none yet) must open now; pipes and devices are opened by the writer, which may
    // wait for a reader.
    std::error_code ignored;
    auto status = std::filesystem::status(config.path, ignored);
    if (!std::filesystem::exists(status) || std::filesystem::is_regular_file(status)) {
      int fd = open_for_append(config.path);
      if (fd < 0) {
        return tl::unexpected("cannot open the audit log " + config.path + ": " +
                              std::strerror(errno));
      }
      ::close(fd);
    }
  }
  Metrics metrics{
      &registry
           .counter("xks_audit_records_dropped_total",
                    "Requests served without an audit record because the queue was full.")
           .labels({}),
      &registry
           .counter("xks_audit_write_errors_total",
                    "Failed opens, writes and fsyncs of the audit log (retried every second).")
           .labels({}),
      &registry
           .counter("xks_audit_records_unwritten_total",
                    "Audit records lost to write errors (a gap record in the log says how many).")
           .labels({}),
      &registry
           .counter("xks_audit_records_suppressed_total",
                    "Records of requests that failed authentication, over the per-second quota, "
                    "counted in suppressed records instead of written one by one.")
           .labels({}),
      &registry.gauge("xks_audit_writable", "1 while the audit log is being written, else 0.")
           .labels({}),
      &registry
           .gauge("xks_audit_sequence",
                  "Sequence number of the last audit line written (to compare with the file).")
           .labels({})};
  return std::unique_ptr<AuditLog>(
      new AuditLog(std::move(config), std::move(key), metrics, std::move(version)));
}

AuditLog::AuditLog(AuditConfig config, std::optional<AuditKey> key, Metrics metrics,
                   std::string version)
    : config_(std::move(config)),
      key_(std::move(key)),
      metrics_(metrics),
      version_(std::move(version)),
      mandatory_(config_.on_full == AuditConfig::OnFull::kReject),
      chain_(key_ ? &*key_ : nullptr) {
  if (config_.path != "-") {
    if (auto head = read_audit_head(config_.path))
      chain_.reset(std::move(*head));
  }
  metrics_.writable->set(1);
  writer_ = std::thread([this] { run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

AuditLog::Place AuditLog::reserve() {
  if (mandatory_ && !writable_.load(std::memory_order_relaxed))
    return Place::kNotWritable;
  std::size_t held = reserved_.load(std::memory_order_relaxed);
  do {
    if (held >= config_.queue_size)
      return Place::kFull;
  } while (!reserved_.compare_exchange_weak(held, held + 1, std::memory_order_relaxed));
  return Place::kReserved;
}

void AuditLog::submit(std::string fields, Written written) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (written && !urgent_) {
      urgent_ = true;
      wake = true;
    }
    queue_.push_back({std::move(fields), std::move(written), true});
    wake = wake || queue_.size() == kWakeAt;
  }
  if (wake)
    wake_.notify_one();
}

bool AuditLog::sample_unauthenticated() {
  std::int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now().time_since_epoch())
          .count();
  {
    std::lock_guard lock(mutex_);
    if (second != quota_second_) {
      quota_second_ = second;
      quota_used_ = 0;
    }
    if (quota_used_ < config_.unauthenticated_per_second && reserve() == Place::kReserved) {
      ++quota_used_;
      return true;
    }
    ++suppressed_;
  }
  metrics_.suppressed->inc();
  return false;
}

void AuditLog::record_event(std::string_view kind, std::string_view fields) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({control_fields(kind, fields), {}, false});
  }
  wake_.notify_one();
}

void AuditLog::dropped() {
  metrics_.dropped->inc();
}

void AuditLog::reopen() {
  {
    std::lock_guard lock(mutex_);
    reopen_ = true;
  }
  wake_.notify_one();
}

bool AuditLog::ready() const {
  return !mandatory_ || writable_.load(std::memory_order_relaxed);
}

std::string AuditLog::control_fields(std::string_view kind, std::string_view extra) const {
  std::string fields;
  append_json_field(fields, "record", kind);
  append_json_field(fields, "time", utc_timestamp(std::chrono::system_clock::now()));
  fields.append(extra);
  return fields;
}

void AuditLog::report_failure(const std::string& what, int error) {
  next_open_ = SteadyClock::now() + kRetryInterval;  // not reopened before then
  metrics_.write_errors->inc();
  metrics_.writable->set(0);
  writable_.store(false, std::memory_order_relaxed);
  auto now = SteadyClock::now();
  if (now - last_warning_ >= kWarningInterval) {
    last_warning_ = now;
    spdlog::error("audit log {}: {} failed: {}{}", config_.path, what, std::strerror(error),
                  mandatory_ ? " (requests are refused until it works: on_full = reject)" : "");
  }
}

bool AuditLog::ensure_open() {
  if (fd_ >= 0)
    return true;
  // After a failed open, retried once a second; a reopen (SIGHUP) opens at once.
  auto now = SteadyClock::now();
  if (now < next_open_)
    return false;
  fd_ = config_.path == "-" ? STDOUT_FILENO : open_for_append(config_.path);
  if (fd_ < 0) {
    report_failure("open", errno);
    return false;
  }
  struct stat status {};
  fd_is_regular_ = ::fstat(fd_, &status) == 0 && S_ISREG(status.st_mode);
  // A line cut off by a crash stays a line of its own (verify lists it).
  if (fd_is_regular_ && status.st_size > 0) {
    std::ifstream existing(config_.path, std::ios::binary);
    char last = '\n';
    if (existing.seekg(status.st_size - 1) && existing.get(last) && last != '\n')
      (void)write_all(fd_, "\n");
  }
  std::string extra = "\"pid\":" + std::to_string(::getpid()) + ",";
  append_json_field(extra, "version", version_);
  extra += key_ ? "\"keyed\":true," : "\"keyed\":false,";
  std::deque<Entry> start;
  start.push_back({control_fields(audit_record_kind::kStart, extra), {}, false});
  // The start record comes first in a file; a gap record, if records were lost, after it.
  std::size_t lost = std::exchange(lost_, 0);
  bool written = write_batch(start);
  lost_ += lost;
  if (written) {
    spdlog::info("audit log {}: start record written at seq {}, chain {}", config_.path,
                 chain_.head().seq, chain_.head().chain);
  }
  return written;
}

void AuditLog::close_output(std::string_view kind) {
  if (fd_ < 0)
    return;
  std::deque<Entry> last;
  last.push_back({control_fields(kind), {}, false});
  if (write_batch(last) &&
      maybe_fsync(0, config_.fsync_records > 0 || config_.fsync_interval.count() > 0)) {
    spdlog::info("audit log {}: {} record written at seq {}, chain {}", config_.path, kind,
                 chain_.head().seq, chain_.head().chain);
  }
  close_fd();
}

bool AuditLog::maybe_fsync(std::size_t records, bool force) {
  unsynced_ += records;
  if (fd_ < 0 || unsynced_ == 0)
    return true;
  auto now = SteadyClock::now();
  bool due = force || (config_.fsync_records > 0 && unsynced_ >= config_.fsync_records) ||
             (config_.fsync_interval.count() > 0 && now - last_fsync_ >= config_.fsync_interval);
  if (!due)
    return true;
  unsynced_ = 0;
  last_fsync_ = now;
  if (fd_is_regular_ && ::fdatasync(fd_) != 0) {
    report_failure("fsync", errno);
    close_fd();  // reopened (with a start record) once a second, like after a write error
    return false;
  }
  return true;
}

bool AuditLog::still_at_path() const {
  // Moved away (logrotate) or replaced: reopen. Still the file at the path: nothing to do, so
  // that a SIGHUP for a reload adds no rotate and start records.
  struct stat open_file {
  }, at_path{};
  return fd_ >= 0 && fd_is_regular_ && ::fstat(fd_, &open_file) == 0 &&
         ::stat(config_.path.c_str(), &at_path) == 0 && open_file.st_dev == at_path.st_dev &&
         open_file.st_ino == at_path.st_ino;
}

void AuditLog::close_fd() {
  if (fd_ >= 0 && fd_ != STDOUT_FILENO)
    ::close(fd_);
  fd_ = -1;
}

// Writes the batch (after a gap record, when records were lost before); on failure, rolls the
// chain and the file back to where they were and counts what was lost. Calls every waiting
// record's callback either way, after the fsync when one is due.
bool AuditLog::write_batch(std::deque<Entry>& batch) {
  std::size_t records = 0;
  for (const Entry& entry : batch)
    records += entry.counts ? 1 : 0;
  auto finish = [&](bool written, bool lost) {
    for (Entry& entry : batch) {
      if (entry.written)
        entry.written(written);
    }
    if (lost) {
      lost_ += records;
      metrics_.unwritten->inc(static_cast<double>(records));
    }
    return written;
  };
  if (fd_ < 0)
    return finish(false, true);
  AuditChainHead before = chain_.head();
  std::string text;
  if (lost_ > 0) {
    text += chain_.line(
        control_fields(audit_record_kind::kGap, "\"lost\":" + std::to_string(lost_) + ","));
    text.push_back('\n');
  }
  for (const Entry& entry : batch) {
    text += chain_.line(entry.fields);
    text.push_back('\n');
  }
  off_t size_before = fd_is_regular_ ? ::lseek(fd_, 0, SEEK_END) : -1;
  if (!write_all(fd_, text)) {
    int error = errno;
    chain_.reset(std::move(before));
    // What reached the file is taken back; if it cannot be, the chain goes on from the last
    // whole line the file holds (a cut-off line then stays, and verify lists it).
    if (size_before >= 0 && ::ftruncate(fd_, size_before) != 0) {
      if (auto head = read_audit_head(config_.path))
        chain_.reset(std::move(*head));
    }
    report_failure("write", error);
    close_fd();
    return finish(false, true);
  }
  lost_ = 0;
  metrics_.sequence->set(static_cast<double>(chain_.head().seq));
  // The lines are in the file but, when the fsync they were due fails, not known to be on
  // disk: their waiting answers become errors (nothing is counted as lost).
  if (!maybe_fsync(records, false))
    return finish(false, false);
  writable_.store(true, std::memory_order_relaxed);
  metrics_.writable->set(1);
  return finish(true, false);
}

void AuditLog::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, kFlushInterval,
                   [this] { return stopping_ || reopen_ || urgent_ || queue_.size() >= kWakeAt; });
    std::deque<Entry> batch;
    batch.swap(queue_);
    bool reopen = std::exchange(reopen_, false);
    bool stopping = stopping_;
    urgent_ = false;
    auto now = SteadyClock::now();
    if (suppressed_ > 0 && (stopping || now - last_summary_ >= kSummaryInterval)) {
      last_summary_ = now;
      batch.push_back({control_fields(audit_record_kind::kSuppressed,
                                      "\"count\":" + std::to_string(suppressed_) + ","),
                       {},
                       false});
      suppressed_ = 0;
    }
    lock.unlock();

    if (reopen && !still_at_path())
      close_output(audit_record_kind::kRotate);
    std::size_t places = 0;
    for (const Entry& entry : batch)
      places += entry.counts ? 1 : 0;
    // Opens (or, after a failure, retries once a second) even with nothing queued, so that a
    // log that works again becomes writable without waiting for traffic.
    if (ensure_open()) {
      if (!batch.empty())
        write_batch(batch);
      maybe_fsync(0, false);
    } else if (!batch.empty()) {
      write_batch(batch);  // fails: counted, and the waiting answers become errors
    }
    reserved_.fetch_sub(places, std::memory_order_relaxed);

    lock.lock();
    if (stopping && queue_.empty() && suppressed_ == 0) {
      lock.unlock();
      close_output(audit_record_kind::kStop);
      return;
    }
  }
}

}  // namespace xks::proxy
