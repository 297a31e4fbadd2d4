// Writing and verifying the hash-chained audit log.
#include "xks/proxy/ops/audit_log.h"

#include <openssl/evp.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

namespace xks::proxy {

namespace {

constexpr std::string_view kChainField = ",\"chain\":\"";
// Lines reach the file at most this late; a burst wakes the writer sooner.
constexpr auto kFlushInterval = std::chrono::milliseconds(50);
constexpr std::size_t kWakeAt = 512;
const std::string kGenesis(64, '0');

// Hex SHA-256, the line hash (OpenSSL's digest: the log depends on no other module).
std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

}  // namespace

std::string utc_timestamp(std::chrono::system_clock::time_point time) {
  auto micros = std::chrono::floor<std::chrono::microseconds>(time);
  auto seconds = std::chrono::floor<std::chrono::seconds>(micros);
  std::time_t t = std::chrono::system_clock::to_time_t(seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long>((micros - seconds).count()));
  return buffer;
}

namespace {

// The chain value at the end of an existing log, so that appending continues it.
std::string last_chain(const std::string& path) {
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored))
    return kGenesis;  // e.g. a pipe
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file)
    return kGenesis;
  std::streamoff size = file.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - 8192);
  file.seekg(start);
  std::string tail(static_cast<std::size_t>(size - start), '\0');
  file.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  while (!tail.empty() && tail.back() == '\n')
    tail.pop_back();
  std::string line = tail.substr(tail.rfind('\n') == std::string::npos ? 0 : tail.rfind('\n') + 1);
  std::size_t at = line.rfind(kChainField);
  if (at == std::string::npos || line.size() < at + kChainField.size() + 64)
    return kGenesis;
  return line.substr(at + kChainField.size(), 64);
}

}  // namespace

void append_json_field(std::string& out, std::string_view name, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  out.append(name);
  out.append("\":\"");
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[(c >> 4) & 0xf]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.append("\",");
}

void append_json_number(std::string& out, std::string_view name, long value) {
  out.push_back('"');
  out.append(name);
  out.append("\":");
  out.append(std::to_string(value));
  out.push_back(',');
}

std::string audit_line(std::string_view fields, const std::string& previous_chain,
                       std::string& chain) {
  std::string line = "{";
  line.reserve(fields.size() + 2 * 64 + 32);
  line.append(fields);
  append_json_field(line, "prev", previous_chain);
  line.back() = '}';
  chain = sha256_hex(line);
  line.pop_back();  // the closing brace: the chain goes last
  line.append(kChainField).append(chain).append("\"}");
  return line;
}

AuditLog::AuditLog(AuditConfig config, metrics::Registry& registry)
    : config_(std::move(config)),
      dropped_(&registry
                    .counter("xks_audit_records_dropped_total",
                             "Requests served without an audit record (queue full).")
                    .labels({})) {
  previous_chain_ = config_.path == "-" ? kGenesis : last_chain(config_.path);
  writer_ = std::thread([this] { run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
  if (output_ != nullptr && output_ != stdout)
    std::fclose(output_);
}

bool AuditLog::reserve() {
  std::size_t held = reserved_.load(std::memory_order_relaxed);
  do {
    if (held >= config_.queue_size)
      return false;
  } while (!reserved_.compare_exchange_weak(held, held + 1, std::memory_order_relaxed));
  return true;
}

void AuditLog::submit(std::string fields) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(fields));
    wake = queue_.size() == kWakeAt;
  }
  // The writer batches: it wakes every kFlushInterval, or early when the queue fills up.
  if (wake)
    wake_.notify_one();
}

void AuditLog::reopen() {
  {
    std::lock_guard lock(mutex_);
    reopen_ = true;
  }
  wake_.notify_one();
}

bool AuditLog::open_output() {
  if (output_ != nullptr && output_ != stdout)
    std::fclose(output_);
  output_ = config_.path == "-" ? stdout : std::fopen(config_.path.c_str(), "a");
  return output_ != nullptr;
}

void AuditLog::run() {
  open_output();
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, kFlushInterval,
                   [this] { return stopping_ || reopen_ || queue_.size() >= kWakeAt; });
    if (std::exchange(reopen_, false))
      open_output();
    if (queue_.empty()) {
      if (stopping_)
        return;
      continue;
    }
    std::deque<std::string> batch;
    batch.swap(queue_);
    lock.unlock();
    std::string text;
    for (const std::string& fields : batch) {
      std::string chain;
      text += audit_line(fields, previous_chain_, chain);
      text.push_back('\n');
      previous_chain_ = std::move(chain);
    }
    if (output_ != nullptr) {
      std::fwrite(text.data(), 1, text.size(), output_);
      std::fflush(output_);
    }
    reserved_.fetch_sub(batch.size(), std::memory_order_relaxed);
    lock.lock();
  }
}

AuditVerification verify_audit_file(const std::string& path) {
  AuditVerification result;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    result.first_bad_line = 1;
    result.reason = "cannot read " + path;
    return result;
  }
  std::string previous;
  for (std::string line; std::getline(file, line);) {
    std::size_t number = ++result.lines;
    auto bad = [&](std::string reason) {
      result.first_bad_line = number;
      result.reason = std::move(reason);
      return result;
    };
    std::size_t at = line.rfind(kChainField);
    if (at == std::string::npos || line.size() != at + kChainField.size() + 64 + 2 ||
        !line.ends_with("\"}")) {
      return bad("not an audit line");
    }
    std::string chain = line.substr(at + kChainField.size(), 64);
    std::string body = line.substr(0, at) + "}";
    if (sha256_hex(body) != chain)
      return bad("content does not match its hash (edited)");
    boost::system::error_code error;
    boost::json::value parsed = boost::json::parse(body, error);
    const boost::json::value* prev =
        !error && parsed.is_object() ? parsed.as_object().if_contains("prev") : nullptr;
    if (prev == nullptr || !prev->is_string())
      return bad("no prev field");
    if (number > 1 && prev->as_string() != previous) {
      return bad("does not follow the line before (a line was deleted, added or moved)");
    }
    previous = chain;
  }
  return result;
}

}  // namespace xks::proxy
