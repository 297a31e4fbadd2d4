// The audit log's line format and its chain, shared by the writer (audit_log.h) and
// `xks-proxy audit verify`.
//
// A line is one JSON object: the record's own members, then
//   "seq":N          (1, 2, 3... across files and restarts)
//   "prev":"<hex>"   (the previous line's chain; 64 zeros before the first line)
//   "chain":"<hex>"  (HMAC-SHA-256 with the audit key, or plain SHA-256 without one, of the
//                     line up to and including "prev", closed with '}')
// Control records carry "record": "start" begins every file the proxy opens (and every
// restart), "rotate" ends a file at rotation, "stop" ends the last file at shutdown, "gap" says
// how many records could not be written, "suppressed" how many unauthenticated requests were
// not recorded one by one. With a key, nobody without it can edit, delete, add, reorder or
// rewrite lines unnoticed; truncation shows as a first line that is not "start" or a last line
// that is not "rotate" or "stop".
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace xks::proxy {

// The HMAC key: the bytes of a file (at least 32; e.g. `head -c 32 /dev/urandom`). Wiped when
// destroyed.
class AuditKey {
 public:
  static tl::expected<AuditKey, std::string> read(const std::string& path);
  AuditKey(AuditKey&&) noexcept = default;
  AuditKey& operator=(AuditKey&&) noexcept = default;
  ~AuditKey();
  const std::vector<unsigned char>& bytes() const { return bytes_; }

 private:
  AuditKey() = default;
  std::vector<unsigned char> bytes_;
};

inline constexpr std::size_t kAuditKeyMinBytes = 32;

namespace audit_record_kind {
inline constexpr std::string_view kStart = "start";
inline constexpr std::string_view kRotate = "rotate";
inline constexpr std::string_view kStop = "stop";
inline constexpr std::string_view kGap = "gap";
inline constexpr std::string_view kSuppressed = "suppressed";
inline constexpr std::string_view kConfig =
    "config";  // an operator's change (AuditLog::record_event)
}  // namespace audit_record_kind

// Where a chain stands: the last line's sequence number and chain value.
struct AuditChainHead {
  std::uint64_t seq = 0;
  std::string chain = std::string(64, '0');
  std::string kind;  // the last line's "record" ("" for a request record)
};

class AuditChain {
 public:
  // `key` null: plain SHA-256 (tamper-evident only against those who cannot recompute it).
  explicit AuditChain(const AuditKey* key, AuditChainHead head = {});
  ~AuditChain();
  AuditChain(const AuditChain&) = delete;
  AuditChain& operator=(const AuditChain&) = delete;
  // The line for `fields` (JSON members, each followed by a comma, as built by
  // append_json_field), without a newline; the head moves past it.
  std::string line(std::string_view fields);
  const AuditChainHead& head() const { return head_; }
  // Sets the head back (the line made last could not be written).
  void reset(AuditChainHead head) { head_ = std::move(head); }
  // The chain value of a line's content (everything before "chain", closed with '}').
  std::string digest(std::string_view body) const;

 private:
  const AuditKey* key_;
  AuditChainHead head_;
  // HMAC-SHA256 keyed once with key_, re-initialised for each line (null without a key): an
  // HMAC() per line would fetch the algorithm and key a new context every time.
  EVP_MAC_CTX* mac_ = nullptr;
};

// The head after the last complete line of an existing file (to continue it), or nullopt
// when the file is empty, absent or not a regular file.
std::optional<AuditChainHead> read_audit_head(const std::string& path);

// Appends `"name":"value",` with the value escaped for JSON; and `"name":value,`.
void append_json_field(std::string& out, std::string_view name, std::string_view value);
void append_json_number(std::string& out, std::string_view name, long long value);
// `time` as an RFC 3339 UTC timestamp with microseconds, e.g. 2026-11-29T10:00:00.000001Z.
std::string utc_timestamp(std::chrono::system_clock::time_point time);

struct AuditVerification {
  std::size_t lines = 0;           // lines checked, over all files
  std::string bad_file;            // set, with first_bad_line and reason, when a check failed
  std::size_t first_bad_line = 0;  // 1-based in bad_file; 0 when everything checks out
  std::string reason;
  std::uint64_t first_seq = 0;  // the first line's seq and prev: where the files take up
  std::string first_prev;
  AuditChainHead head;  // the last line's
  // "file:line" of restarts that followed no stop record, and of lines cut off by a crash
  // (followed by a restart that continues the chain from the line before them).
  std::vector<std::string> unclean;
};

struct AuditVerifyOptions {
  bool live = false;           // the last file is still being written
  bool allow_unkeyed = false;  // accept a log whose chain is plain SHA-256
};

// Checks files written one after the other (oldest first): every line's chain (HMAC with
// `key`, which a keyed log requires; an unkeyed log only with allow_unkeyed), its link to the
// line before and its sequence number, across files too; each file begins with a start record
// and, unless `live` (the last file is still being written), ends with a rotate or stop record.
// Restarts after no stop record, and lines cut off by a crash, are listed in `unclean`: the
// caller decides whether they are acceptable.
AuditVerification verify_audit_files(const std::vector<std::string>& paths, const AuditKey* key,
                                     const AuditVerifyOptions& options);

}  // namespace xks::proxy
