// The audit log's line format, chain and verification.
#include "xks/proxy/ops/audit_chain.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace xks::proxy {

namespace {

constexpr std::string_view kChainField = ",\"chain\":\"";
constexpr std::size_t kHexDigestLength = 64;

std::string hex(const unsigned char* data, std::size_t length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (std::size_t i = 0; i < length; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xf]);
  }
  return out;
}

// A line split into its hashed content and its chain value; nullopt when not shaped as one.
struct SplitLine {
  std::string body;  // the line up to "chain", closed with '}'
  std::string chain;
};

std::optional<SplitLine> split(std::string_view line) {
  std::size_t at = line.rfind(kChainField);
  if (at == std::string_view::npos ||
      line.size() != at + kChainField.size() + kHexDigestLength + 2 || !line.ends_with("\"}")) {
    return std::nullopt;
  }
  return SplitLine{std::string(line.substr(0, at)) + "}",
                   std::string(line.substr(at + kChainField.size(), kHexDigestLength))};
}

// The members verification and continuation need from a line's content.
struct LineFacts {
  std::uint64_t seq = 0;
  std::string prev;
  std::string kind;
  std::optional<bool> keyed;  // start records say whether the chain is keyed
};

std::optional<LineFacts> facts_of(const std::string& body) {
  boost::system::error_code error;
  boost::json::value parsed = boost::json::parse(body, error);
  if (error || !parsed.is_object())
    return std::nullopt;
  const boost::json::object& object = parsed.as_object();
  const boost::json::value* seq = object.if_contains("seq");
  const boost::json::value* prev = object.if_contains("prev");
  if (seq == nullptr || !seq->is_number() || prev == nullptr || !prev->is_string())
    return std::nullopt;
  LineFacts facts;
  boost::system::error_code conversion;
  facts.seq = seq->to_number<std::uint64_t>(conversion);
  if (conversion)
    return std::nullopt;
  facts.prev = prev->as_string();
  if (const boost::json::value* kind = object.if_contains("record"); kind && kind->is_string())
    facts.kind = kind->as_string();
  if (const boost::json::value* keyed = object.if_contains("keyed"); keyed && keyed->is_bool())
    facts.keyed = keyed->as_bool();
  return facts;
}

bool ends_a_file(std::string_view kind) {
  return kind == audit_record_kind::kRotate || kind == audit_record_kind::kStop;
}

std::vector<std::string> read_lines(std::ifstream& file) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);)
    lines.push_back(std::move(line));
  return lines;
}

}  // namespace

tl::expected<AuditKey, std::string> AuditKey::read(const std::string& path) {
  // Unbuffered, into room reserved up front: nothing but the key holds a copy.
  constexpr std::size_t kMaxKeyBytes = 1024;
  std::ifstream file;
  file.rdbuf()->pubsetbuf(nullptr, 0);
  file.open(path, std::ios::binary);
  if (!file)
    return tl::unexpected("cannot read the audit key file " + path);
  std::error_code size_error;
  if (std::filesystem::file_size(path, size_error) > kMaxKeyBytes && !size_error) {
    return tl::unexpected("the audit key file " + path + " holds more than " +
                          std::to_string(kMaxKeyBytes) + " bytes");
  }
  AuditKey key;
  key.bytes_.reserve(kMaxKeyBytes);
  for (std::istreambuf_iterator<char> it(file), end; it != end && key.bytes_.size() < kMaxKeyBytes;
       ++it)
    key.bytes_.push_back(static_cast<unsigned char>(*it));
  if (key.bytes_.size() < kAuditKeyMinBytes) {
    return tl::unexpected("the audit key file " + path + " holds fewer than " +
                          std::to_string(kAuditKeyMinBytes) + " bytes");
  }
  return key;
}

AuditKey::~AuditKey() {
  if (!bytes_.empty())
    OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

AuditChain::AuditChain(const AuditKey* key, AuditChainHead head)
    : key_(key), head_(std::move(head)) {
  if (key_ == nullptr)
    return;
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  mac_ = hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr;
  EVP_MAC_free(hmac);  // the context holds its own reference
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0),
                         OSSL_PARAM_construct_end()};
  if (mac_ == nullptr ||
      EVP_MAC_init(mac_, key_->bytes().data(), key_->bytes().size(), params) != 1)
    throw std::runtime_error("HMAC-SHA256 unavailable for the audit chain");
}

AuditChain::~AuditChain() {
  EVP_MAC_CTX_free(mac_);  // cleanses the key it holds
}

std::string AuditChain::digest(std::string_view body) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(body.data());
  bool ok;
  if (mac_ != nullptr) {
    // A null key re-initialises with the key the context already holds.
    ok = EVP_MAC_init(mac_, nullptr, 0, nullptr) == 1 &&
         EVP_MAC_update(mac_, data, body.size()) == 1 &&
         EVP_MAC_final(mac_, digest, &length, sizeof digest) == 1;
  } else {
    unsigned int digest_length = 0;
    ok = EVP_Digest(data, body.size(), digest, &digest_length, EVP_sha256(), nullptr) == 1;
    length = digest_length;
  }
  if (!ok)
    throw std::runtime_error("the audit chain's digest failed");
  return hex(digest, length);
}

std::string AuditChain::line(std::string_view fields) {
  std::string line = "{";
  line.reserve(fields.size() + 2 * kHexDigestLength + 64);
  line.append(fields);
  append_json_number(line, "seq", static_cast<long long>(head_.seq + 1));
  append_json_field(line, "prev", head_.chain);
  line.back() = '}';
  std::string chain = digest(line);
  line.pop_back();  // the closing brace: the chain goes last
  line.append(kChainField).append(chain).append("\"}");
  ++head_.seq;
  head_.chain = std::move(chain);
  // Control records name their kind first (see AuditLog).
  constexpr std::string_view kKindField = "\"record\":\"";
  head_.kind.clear();
  if (fields.starts_with(kKindField)) {
    std::string_view rest = fields.substr(kKindField.size());
    head_.kind = std::string(rest.substr(0, rest.find('"')));
  }
  return line;
}

std::optional<AuditChainHead> read_audit_head(const std::string& path) {
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored))
    return std::nullopt;  // e.g. a pipe, or no file yet
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file)
    return std::nullopt;
  std::streamoff size = file.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - 64 * 1024);
  file.seekg(start);
  std::string tail(static_cast<std::size_t>(size - start), '\0');
  file.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  // The last complete line (a line cut off by a crash has no newline yet).
  std::size_t end = tail.rfind('\n');
  if (end == std::string::npos)
    return std::nullopt;
  std::size_t begin = tail.rfind('\n', end == 0 ? 0 : end - 1);
  begin = (begin == std::string::npos || end == 0) ? 0 : begin + 1;
  auto line = split(std::string_view(tail).substr(begin, end - begin));
  if (!line)
    return std::nullopt;
  auto facts = facts_of(line->body);
  if (!facts)
    return std::nullopt;
  return AuditChainHead{facts->seq, line->chain, facts->kind};
}

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

void append_json_number(std::string& out, std::string_view name, long long value) {
  out.push_back('"');
  out.append(name);
  out.append("\":");
  out.append(std::to_string(value));
  out.push_back(',');
}

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

AuditVerification verify_audit_files(const std::vector<std::string>& paths, const AuditKey* key,
                                     const AuditVerifyOptions& options) {
  AuditVerification result;
  AuditChain chain(key);
  bool any = false;
  for (std::size_t f = 0; f < paths.size(); ++f) {
    const std::string& path = paths[f];
    auto fail = [&](std::size_t number, std::string reason) {
      result.bad_file = path;
      result.first_bad_line = number;
      result.reason = std::move(reason);
      return result;
    };
    std::ifstream file(path, std::ios::binary);
    if (!file)
      return fail(1, "cannot read the file");
    std::vector<std::string> lines = read_lines(file);
    if (lines.empty())
      return fail(1, "the file is empty");
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::size_t number = i + 1;
      ++result.lines;
      auto line = split(lines[i]);
      std::optional<LineFacts> facts = line ? facts_of(line->body) : std::nullopt;
      if (!facts) {
        // A line a crash cut off is tolerated (and listed) when the restart right after it
        // continues the chain from the line before it.
        std::optional<SplitLine> next = i + 1 < lines.size() ? split(lines[i + 1]) : std::nullopt;
        std::optional<LineFacts> after = next ? facts_of(next->body) : std::nullopt;
        if (any && after && after->kind == audit_record_kind::kStart &&
            after->prev == chain.head().chain && after->seq == chain.head().seq + 1) {
          result.unclean.push_back(path + ":" + std::to_string(number));
          continue;
        }
        return fail(number, "not an audit line (cut off, or not written by xks-proxy)");
      }
      bool start = facts->kind == audit_record_kind::kStart;
      if (i == 0 && !start)
        return fail(number, "the file does not begin with a start record (lines cut off?)");
      if (start && facts->keyed && *facts->keyed && key == nullptr)
        return fail(number, "a keyed log: give its key (--key-file) to verify it");
      if (start && facts->keyed && !*facts->keyed && key != nullptr)
        return fail(number, "not a keyed log, but a key was given");
      if (start && facts->keyed && !*facts->keyed && !options.allow_unkeyed) {
        return fail(number,
                    "an unkeyed log (plain SHA-256, which anyone can recompute): --unkeyed to "
                    "check it anyway");
      }
      if (chain.digest(line->body) != line->chain) {
        return fail(number, key != nullptr ? "content does not match its HMAC (edited, or "
                                             "another key)"
                                           : "content does not match its hash (edited)");
      }
      const AuditChainHead& head = chain.head();
      if (any && facts->seq == 1 && facts->prev == AuditChainHead{}.chain) {
        return fail(number,
                    "a new chain begins here (seq 1): it does not continue the lines before; "
                    "verify the files before it on their own");
      }
      if (any) {
        if (facts->prev != head.chain) {
          return fail(number,
                      "does not follow the line before (a line was deleted, added or moved)");
        }
        if (facts->seq != head.seq + 1) {
          return fail(number, "sequence number " + std::to_string(facts->seq) + " after " +
                                  std::to_string(head.seq));
        }
      } else {
        result.first_seq = facts->seq;
        result.first_prev = facts->prev;
      }
      if (start && any && !ends_a_file(head.kind) &&
          (result.unclean.empty() ||
           result.unclean.back() != path + ":" + std::to_string(number - 1))) {
        result.unclean.push_back(path + ":" + std::to_string(number));
      }
      chain.reset({facts->seq, line->chain, facts->kind});
      any = true;
    }
    bool last_file = f + 1 == paths.size();
    if (!ends_a_file(chain.head().kind) && !(options.live && last_file)) {
      return fail(lines.size(),
                  "the file does not end with a rotate or stop record (lines cut off, or still "
                  "being written: --live)");
    }
  }
  result.head = chain.head();
  return result;
}

}  // namespace xks::proxy
