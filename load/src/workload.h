// What xks-load sends and how it judges the answers: the workload mix, requests signed the way
// AWS KMS signs them (host;x-amz-date, a fresh kmsRequestId each), and the outcome of each
// answer, including the verify mode's checks. No I/O here.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "xks/sigv4/signer.h"
#include "xks/wire/operation.h"

namespace xks::load {

using wire::Operation;
// The order of --mix weights (named by wire::uri_name: encrypt, decrypt, metadata, health).
inline constexpr std::array<Operation, 4> kMixOrder = {Operation::kEncrypt, Operation::kDecrypt,
                                                       Operation::kGetKeyMetadata,
                                                       Operation::kGetHealthStatus};

// Where the proxy is and who we are to it.
struct Target {
  std::string host = "localhost";
  std::string port = "443";
  std::string uri_prefix;  // the key store's prefix, before /kms/xks/v1
  std::string access_key_id;
  std::string secret_access_key;
  std::string region = "us-east-1";

  // The Host header (and :authority) KMS would send: the port only when it is not 443.
  std::string authority() const;
};

struct WorkloadMix {
  std::array<unsigned, 4> weights{1, 0, 0, 0};  // indexed like kMixOrder
  std::vector<std::string> key_ids{"foo"};
  std::size_t plaintext_bytes = 32;
  std::size_t aad_bytes = 0;  // 0: requests carry no AAD
  bool cdiv = false;          // ask Encrypt for a ciphertext data integrity value
};

// A ciphertext made during warm-up, which decrypts replay; fields as base64 on the wire.
struct SealedRecord {
  std::string key_id;
  std::string plaintext;
  std::string aad;  // empty: none
  std::string ciphertext;
  std::string initialization_vector;
  std::string authentication_tag;
  std::string ciphertext_metadata;  // empty: none
};

struct PreparedRequest {
  Operation operation = Operation::kEncrypt;
  std::string key_id;
  std::string path;
  std::string body;
  std::string plaintext;  // Encrypt: what was sent; Decrypt: what must come back (base64)
  std::string aad;        // base64, empty when none
  std::string amz_date;
  std::string authorization;
};

class RequestFactory {
 public:
  RequestFactory(const Target& target, const WorkloadMix& mix,
                 std::shared_ptr<const std::vector<SealedRecord>> sealed, std::uint64_t seed);

  // The next operation by the mix's weights; Decrypt only when there are sealed records.
  Operation pick();
  // Builds and signs a request into `request`, reusing its buffers.
  void make(Operation operation, PreparedRequest& request, std::string_view key_id = {});
  PreparedRequest make(Operation operation, std::string_view key_id = {}) {
    PreparedRequest request;
    make(operation, request, key_id);
    return request;
  }
  // The whole HTTP/1.1 request, headers and body, into `out` (its buffer reused).
  void http1(const PreparedRequest& request, std::string& out) const;
  const std::string& authority() const { return authority_; }

 private:
  void append_random_base64(std::string& out, std::size_t bytes);
  void append_request_id(std::string& out);
  void append_metadata(std::string& out, std::string_view kms_operation);

  const Target& target_;
  const WorkloadMix& mix_;
  std::shared_ptr<const std::vector<SealedRecord>> sealed_;
  std::string authority_;
  xks::sigv4::Signer signer_;
  std::mt19937_64 random_;
  std::discrete_distribution<int> operations_;
  std::vector<std::uint8_t> random_bytes_;
};

enum class OutcomeKind { kOk, kHttpError, kTransport, kVerify };

struct Outcome {
  OutcomeKind kind = OutcomeKind::kOk;
  std::string label;  // "OK", "400 ValidationException", "transport: ...", "verify: ..."
};

// Judges an answer. With `verify`, a 200 must also be right: Encrypt's fields the right sizes
// and its CDIV (when asked for) the spec's digest; Decrypt's plaintext the original one.
Outcome judge(const PreparedRequest& request, unsigned status, std::string_view body, bool verify);

// The sealed record from a successful Encrypt answer, or nothing when it is not one.
std::optional<SealedRecord> seal_from_answer(const PreparedRequest& request, std::string_view body);

}  // namespace xks::load
