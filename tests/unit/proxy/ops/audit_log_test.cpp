// The audit log's hash chain: intact files verify; a deleted, reordered or edited line is
// named; appending after a restart continues the chain; a full queue drops and counts.
#include "xks/proxy/ops/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

namespace xks::proxy {
namespace {

class AuditLogTest : public testing::Test {
 protected:
  AuditLogTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("xks-audit-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "audit.log").string();
  }
  ~AuditLogTest() override { std::filesystem::remove_all(dir_); }

  static std::string record(int i) {
    std::string fields;
    append_json_field(fields, "time", utc_timestamp(std::chrono::system_clock::now()));
    append_json_field(fields, "kmsRequestId", "request-" + std::to_string(i) + " \"quoted\"\n");
    append_json_field(fields, "operation", "Encrypt");
    append_json_number(fields, "status", 200);
    return fields;
  }

  void write(int count) {
    metrics::Registry registry;
    AuditLog log({path_}, registry);
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(log.reserve());
      log.submit(record(i));
    }
  }

  std::vector<std::string> lines() {
    std::ifstream file(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(file, line);)
      out.push_back(line);
    return out;
  }

  void rewrite(const std::vector<std::string>& content) {
    std::ofstream file(path_, std::ios::trunc);
    for (const auto& line : content)
      file << line << "\n";
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(AuditLogTest, AnIntactLogVerifiesAcrossRestarts) {
  write(5);
  write(3);  // a restart appends and continues the chain
  AuditVerification result = verify_audit_file(path_);
  EXPECT_EQ(result.lines, 8u);
  EXPECT_EQ(result.first_bad_line, 0u) << result.reason;
}

TEST_F(AuditLogTest, NamesTheFirstBadLine) {
  write(6);
  std::vector<std::string> original = lines();

  std::vector<std::string> deleted = original;
  deleted.erase(deleted.begin() + 2);
  rewrite(deleted);
  EXPECT_EQ(verify_audit_file(path_).first_bad_line, 3u);

  std::vector<std::string> reordered = original;
  std::swap(reordered[3], reordered[4]);
  rewrite(reordered);
  EXPECT_EQ(verify_audit_file(path_).first_bad_line, 4u);

  std::vector<std::string> edited = original;
  edited[1].replace(edited[1].find("\"status\":200"), 12, "\"status\":403");
  rewrite(edited);
  AuditVerification result = verify_audit_file(path_);
  EXPECT_EQ(result.first_bad_line, 2u);
  EXPECT_NE(result.reason.find("edited"), std::string::npos);

  std::vector<std::string> truncated = original;
  truncated[5].resize(truncated[5].size() - 3);
  rewrite(truncated);
  EXPECT_EQ(verify_audit_file(path_).first_bad_line, 6u);

  rewrite(original);
  EXPECT_EQ(verify_audit_file(path_).first_bad_line, 0u);
}

TEST_F(AuditLogTest, AFullQueueDropsAndCounts) {
  // A FIFO without a reader blocks the writer in open(): the queue fills deterministically.
  std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  metrics::Registry registry;
  std::optional<AuditLog> log;
  log.emplace(AuditConfig{fifo, AuditConfig::OnFull::kDrop, 4}, registry);
  int queued = 0;
  for (int i = 0; i < 10; ++i) {
    if (log->reserve()) {
      log->submit(record(i));
      ++queued;
    } else {
      log->dropped();
    }
  }
  EXPECT_EQ(queued, 4);
  int received = 0;
  std::thread reader([&] {
    std::ifstream in(fifo);
    for (std::string line; std::getline(in, line);)
      ++received;
  });
  log.reset();  // the writer gets its reader, writes the queue and closes
  reader.join();
  EXPECT_EQ(received, 4);
  EXPECT_NE(registry.serialize().find("\nxks_audit_records_dropped_total 6\n"), std::string::npos)
      << registry.serialize();
}

}  // namespace
}  // namespace xks::proxy
