// The audit log: intact files verify across restarts and rotations; an edited, deleted, moved
// or cut-off line is named, at either end of a file; a keyed chain cannot be recomputed without
// its key; write errors are counted and refuse mandatory records; unauthenticated records are
// held to their quota; a full queue drops and counts.
#include "xks/proxy/ops/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
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
    key_path_ = (dir_ / "audit.key").string();
    std::ofstream(key_path_) << "0123456789abcdef0123456789abcdef";
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

  std::unique_ptr<AuditLog> open(AuditConfig config) {
    auto log = AuditLog::open(std::move(config), registry_, "test");
    EXPECT_TRUE(log.has_value()) << log.error();
    return log ? std::move(*log) : nullptr;
  }

  AuditConfig config(bool keyed = false) const {
    AuditConfig config;
    config.path = path_;
    if (keyed)
      config.key_file = key_path_;
    return config;
  }

  // One run of the proxy: a start record, `count` records, a stop record.
  void write(int count, bool keyed = false) {
    auto log = open(config(keyed));
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
      log->submit(record(i));
    }
  }

  std::vector<std::string> lines(const std::string& path) const {
    std::ifstream file(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(file, line);)
      out.push_back(line);
    return out;
  }
  std::vector<std::string> lines() const { return lines(path_); }

  void rewrite(const std::vector<std::string>& content) const {
    std::ofstream file(path_, std::ios::trunc);
    for (const auto& line : content)
      file << line << "\n";
  }

  AuditVerification verify(const AuditKey* key = nullptr, bool live = false) const {
    return verify_audit_files({path_}, key, {live, true});
  }

  AuditKey key() const { return *AuditKey::read(key_path_); }

  // Submits a record someone waits for (as on_full = reject does) and returns what its callback
  // said, or nothing if it was not called within 10 s.
  static std::optional<bool> submit_and_wait(AuditLog& log, std::string fields) {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<bool> written;
    log.submit(std::move(fields), [&](bool ok) {
      std::lock_guard lock(mutex);
      written = ok;
      done.notify_all();
    });
    std::unique_lock lock(mutex);
    done.wait_for(lock, std::chrono::seconds(10), [&] { return written.has_value(); });
    return written;
  }

  double metric(const std::string& name) const {
    std::string text = registry_.serialize();
    std::size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
  }

  metrics::Registry registry_;
  std::filesystem::path dir_;
  std::string path_;
  std::string key_path_;
};

TEST_F(AuditLogTest, AnIntactLogVerifiesAcrossRestarts) {
  write(5);
  write(3);  // a restart appends and continues the chain
  std::vector<std::string> content = lines();
  ASSERT_EQ(content.size(), 12u);  // start, 5, stop, start, 3, stop
  EXPECT_NE(content[0].find("\"record\":\"start\""), std::string::npos);
  EXPECT_NE(content[11].find("\"record\":\"stop\",\"time\""), std::string::npos);
  EXPECT_NE(content[11].find("\"seq\":12,"), std::string::npos);
  AuditVerification result = verify();
  EXPECT_EQ(result.lines, 12u);
  EXPECT_EQ(result.first_bad_line, 0u) << result.reason;
  EXPECT_TRUE(result.unclean.empty());
  EXPECT_EQ(result.head.seq, 12u);
}

TEST_F(AuditLogTest, NamesTheFirstBadLine) {
  write(6);
  std::vector<std::string> original = lines();  // start, records on lines 2-7, stop

  std::vector<std::string> deleted = original;
  deleted.erase(deleted.begin() + 2);
  rewrite(deleted);
  EXPECT_EQ(verify().first_bad_line, 3u);

  std::vector<std::string> reordered = original;
  std::swap(reordered[3], reordered[4]);
  rewrite(reordered);
  EXPECT_EQ(verify().first_bad_line, 4u);

  std::vector<std::string> edited = original;
  edited[1].replace(edited[1].find("\"status\":200"), 12, "\"status\":403");
  rewrite(edited);
  AuditVerification result = verify();
  EXPECT_EQ(result.first_bad_line, 2u);
  EXPECT_NE(result.reason.find("edited"), std::string::npos);

  std::vector<std::string> cut = original;
  cut[5].resize(cut[5].size() - 3);
  rewrite(cut);
  EXPECT_EQ(verify().first_bad_line, 6u);

  rewrite(original);
  EXPECT_EQ(verify().first_bad_line, 0u);
}

TEST_F(AuditLogTest, LinesCutOffAtEitherEndAreFound) {
  write(4);
  std::vector<std::string> original = lines();

  std::vector<std::string> head_cut(original.begin() + 2, original.end());
  rewrite(head_cut);
  AuditVerification head = verify();
  EXPECT_EQ(head.first_bad_line, 1u);
  EXPECT_NE(head.reason.find("begin"), std::string::npos) << head.reason;

  std::vector<std::string> tail_cut(original.begin(), original.end() - 2);
  rewrite(tail_cut);
  AuditVerification tail = verify();
  EXPECT_EQ(tail.first_bad_line, tail_cut.size());
  EXPECT_NE(tail.reason.find("end"), std::string::npos) << tail.reason;
  // A file still being written need not end with a stop record...
  EXPECT_EQ(verify(nullptr, true).first_bad_line, 0u);
  // ...but a restart after such a cut is reported.
  write(1);
  AuditVerification restarted = verify();
  EXPECT_EQ(restarted.first_bad_line, 0u) << restarted.reason;
  ASSERT_EQ(restarted.unclean.size(), 1u);
  EXPECT_EQ(restarted.unclean[0], path_ + ":" + std::to_string(tail_cut.size() + 1));
}

TEST_F(AuditLogTest, AnUnkeyedLogIsCheckedOnlyWhenAskedFor) {
  write(2);
  AuditVerification strict = verify_audit_files({path_}, nullptr, {});
  EXPECT_EQ(strict.first_bad_line, 1u);
  EXPECT_NE(strict.reason.find("--unkeyed"), std::string::npos) << strict.reason;
  EXPECT_EQ(verify().first_bad_line, 0u);
}

TEST_F(AuditLogTest, ALineCutOffByACrashIsListedAndTheChainGoesOn) {
  write(3, true);
  std::vector<std::string> before = lines();
  before.pop_back();  // the crash came before the stop record...
  rewrite(before);
  std::ofstream(path_, std::ios::app) << before.back().substr(0, 40);  // ...mid-line
  write(2, true);  // the restart continues the chain from the last whole line
  AuditKey right = key();
  AuditVerification result = verify(&right);
  EXPECT_EQ(result.first_bad_line, 0u) << result.reason;
  ASSERT_EQ(result.unclean.size(), 1u);
  EXPECT_EQ(result.unclean[0], path_ + ":" + std::to_string(before.size() + 1));
  EXPECT_EQ(result.first_seq, 1u);
}

TEST_F(AuditLogTest, AKeyedChainNeedsItsKey) {
  write(3, true);
  AuditKey right = key();
  EXPECT_EQ(verify(&right).first_bad_line, 0u) << verify(&right).reason;
  AuditVerification without = verify();
  EXPECT_EQ(without.first_bad_line, 1u);
  EXPECT_NE(without.reason.find("--key-file"), std::string::npos);

  std::ofstream(key_path_, std::ios::trunc) << "another key, another key, another key";
  AuditKey wrong = key();
  EXPECT_EQ(verify(&wrong).first_bad_line, 1u);

  // A rewrite by someone without the key: the whole file rechained as an unkeyed log.
  std::vector<std::string> original = lines();
  std::filesystem::remove(path_);
  write(3);
  AuditVerification rewritten = verify(&right);
  EXPECT_EQ(rewritten.first_bad_line, 1u);
  EXPECT_NE(rewritten.reason.find("not a keyed log"), std::string::npos) << rewritten.reason;
  (void)original;
}

TEST_F(AuditLogTest, RotationEndsOneFileAndTheChainContinuesInTheNext) {
  std::string rotated = (dir_ / "audit.log.1").string();
  {
    auto log = open(config(true));
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
      log->submit(record(i));
    }
    // Let the first records reach the file before it moves, as logrotate would.
    for (int i = 0; i < 200 && lines().size() < 4; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::filesystem::rename(path_, rotated);
    log->reopen();
    for (int i = 0; i < 200 && !std::filesystem::exists(path_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
    log->submit(record(3));
  }
  AuditKey right = key();
  EXPECT_NE(lines(rotated).back().find("\"record\":\"rotate\""), std::string::npos);
  EXPECT_NE(lines().front().find("\"record\":\"start\""), std::string::npos);
  AuditVerification both = verify_audit_files({rotated, path_}, &right, {});
  EXPECT_EQ(both.first_bad_line, 0u) << both.bad_file << ": " << both.reason;
  EXPECT_TRUE(both.unclean.empty());
  EXPECT_EQ(verify(&right).first_bad_line, 0u);  // alone, its first link is taken as given
  AuditVerification swapped = verify_audit_files({path_, rotated}, &right, {});
  EXPECT_EQ(swapped.bad_file, rotated);
  EXPECT_EQ(swapped.first_bad_line, 1u);
}

TEST_F(AuditLogTest, ReopeningInQuickSuccessionLosesNothing) {
  // Files moved away and reopened in quick succession (SIGHUPs close together): each reopen
  // writes on at once, nothing is lost, the chain runs through every file.
  std::vector<std::string> files;
  {
    auto log = open(config(true));
    for (int i = 0; i < 4; ++i) {
      ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
      std::optional<bool> written = submit_and_wait(*log, record(i));
      ASSERT_TRUE(written.has_value());
      EXPECT_TRUE(*written) << i;
      files.push_back(path_ + "." + std::to_string(i));
      std::filesystem::rename(path_, files.back());
      log->reopen();
    }
    ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
    ASSERT_TRUE(submit_and_wait(*log, record(4)).value_or(false));
  }
  files.push_back(path_);
  EXPECT_EQ(metric("xks_audit_write_errors_total"), 0);
  AuditKey right = key();
  AuditVerification all = verify_audit_files(files, &right, {});
  EXPECT_EQ(all.first_bad_line, 0u) << all.bad_file << ": " << all.reason;
  std::size_t requests = 0;
  for (const std::string& file : files) {
    for (const std::string& line : lines(file))
      requests += line.find("\"record\":") == std::string::npos ? 1u : 0u;
  }
  EXPECT_EQ(requests, 5u);
}

TEST_F(AuditLogTest, AReopenWhileTheFileStaysWhereItIsChangesNothing) {
  // A SIGHUP for a reload, not for logrotate: no rotate record, no new start record.
  {
    auto log = open(config(true));
    for (int i = 0; i < 3; ++i) {
      log->reopen();
      ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
      ASSERT_TRUE(submit_and_wait(*log, record(i)).value_or(false));
    }
  }
  std::size_t rotates = 0, starts = 0;
  for (const std::string& line : lines()) {
    rotates += line.find("\"record\":\"rotate\"") != std::string::npos ? 1u : 0u;
    starts += line.find("\"record\":\"start\"") != std::string::npos ? 1u : 0u;
  }
  EXPECT_EQ(rotates, 0u);
  EXPECT_EQ(starts, 1u);
  AuditKey right = key();
  EXPECT_EQ(verify(&right).first_bad_line, 0u);
}

TEST_F(AuditLogTest, WriteErrorsAreCountedAndMandatoryRecordsAreRefused) {
  AuditConfig full;
  full.path = "/dev/full";
  full.on_full = AuditConfig::OnFull::kReject;
  auto log = open(full);
  if (log->reserve() == AuditLog::Place::kReserved) {
    std::optional<bool> written = submit_and_wait(*log, record(1));
    ASSERT_TRUE(written.has_value());
    EXPECT_FALSE(*written);
  }
  EXPECT_FALSE(log->ready());
  EXPECT_EQ(log->reserve(), AuditLog::Place::kNotWritable);
  EXPECT_GE(metric("xks_audit_write_errors_total"), 1);
  EXPECT_EQ(metric("xks_audit_writable"), 0);
}

TEST_F(AuditLogTest, MandatoryRecordsAnswerOnceWritten) {
  AuditConfig mandatory = config();
  mandatory.on_full = AuditConfig::OnFull::kReject;
  mandatory.fsync_records = 1;
  auto log = open(mandatory);
  ASSERT_EQ(log->reserve(), AuditLog::Place::kReserved);
  std::optional<bool> written = submit_and_wait(*log, record(1));
  ASSERT_TRUE(written.has_value());
  EXPECT_TRUE(*written);
  EXPECT_TRUE(log->ready());
  // Written before the answer: the record is in the file now.
  EXPECT_NE(lines().back().find("request-1"), std::string::npos);
  EXPECT_EQ(metric("xks_audit_sequence"), 2);
}

TEST_F(AuditLogTest, UnauthenticatedRecordsAreHeldToTheirQuota) {
  AuditConfig quota = config();
  quota.unauthenticated_per_second = 3;
  {
    auto log = open(quota);
    for (int i = 0; i < 10; ++i) {
      if (log->sample_unauthenticated())
        log->submit(record(i));
    }
  }
  std::vector<std::string> content = lines();
  // start, up to 3 records (a second may turn in between: then up to 6), a summary, stop.
  std::size_t records = 0;
  std::size_t suppressed = 0;
  for (const std::string& line : content) {
    records += line.find("kmsRequestId") != std::string::npos ? 1u : 0u;
    if (auto at = line.find("\"record\":\"suppressed\""); at != std::string::npos)
      suppressed += std::stoul(line.substr(line.find("\"count\":") + 8));
  }
  EXPECT_GE(records, 3u);
  EXPECT_LE(records, 6u);
  EXPECT_EQ(records + suppressed, 10u);
  EXPECT_EQ(metric("xks_audit_records_suppressed_total"), static_cast<double>(suppressed));
  EXPECT_EQ(verify().first_bad_line, 0u) << verify().reason;
}

TEST_F(AuditLogTest, AFullQueueDropsAndCounts) {
  // A FIFO without a reader blocks the writer in open(): the queue fills deterministically.
  std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  AuditConfig small;
  small.path = fifo;
  small.queue_size = 4;
  auto log = open(small);
  int queued = 0;
  for (int i = 0; i < 10; ++i) {
    if (log->reserve() == AuditLog::Place::kReserved) {
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
      received += line.find("kmsRequestId") != std::string::npos ? 1 : 0;
  });
  log.reset();  // the writer gets its reader, writes the queue and closes
  reader.join();
  EXPECT_EQ(received, 4);
  EXPECT_EQ(metric("xks_audit_records_dropped_total"), 6);
}

TEST_F(AuditLogTest, AShortKeyIsRefused) {
  std::ofstream(key_path_, std::ios::trunc) << "short";
  auto log = AuditLog::open(config(true), registry_, "test");
  ASSERT_FALSE(log.has_value());
  EXPECT_NE(log.error().find("fewer than 32 bytes"), std::string::npos) << log.error();
}

}  // namespace
}  // namespace xks::proxy
