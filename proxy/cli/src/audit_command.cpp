// Verifying audit logs from the command line.
#include "audit_command.h"

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>

#include "xks/proxy/ops/audit_chain.h"

namespace xks::proxy {

namespace {

struct VerifyOptions {
  std::vector<std::string> files;
  std::string key_file;
  AuditVerifyOptions checks;
  bool allow_unclean = false;
  std::optional<std::uint64_t> expect_last_seq;
};

int verify(const VerifyOptions& options) {
  std::optional<AuditKey> key;
  if (!options.key_file.empty()) {
    auto read = AuditKey::read(options.key_file);
    if (!read) {
      std::cerr << read.error() << "\n";
      return 2;
    }
    key.emplace(std::move(*read));
  }
  AuditVerification result =
      verify_audit_files(options.files, key ? &*key : nullptr, options.checks);
  for (const std::string& place : result.unclean) {
    std::cout << place
              << ": unclean restart (a crash, or lines cut off before it; the chain continues)\n";
  }
  if (result.first_bad_line != 0) {
    std::cout << result.bad_file << ": line " << result.first_bad_line << ": " << result.reason
              << "\n";
    return 1;
  }
  std::cout << result.lines << " lines in " << options.files.size() << " file(s), chain intact"
            << (key ? " (HMAC checked)" : "") << "; seq " << result.first_seq << " to "
            << result.head.seq << (result.first_seq == 1 ? " (from the first line ever)" : "")
            << ", last chain " << result.head.chain << "\n";
  if (options.expect_last_seq && *options.expect_last_seq != result.head.seq) {
    std::cout << "the last seq is " << result.head.seq << ", not the expected "
              << *options.expect_last_seq << ": lines were cut off at the end\n";
    return 1;
  }
  if (!result.unclean.empty() && !options.allow_unclean) {
    std::cout << result.unclean.size()
              << " unclean restart(s): check them against the operational log, then "
                 "--allow-unclean\n";
    return 1;
  }
  return 0;
}

}  // namespace

void add_audit_command(CLI::App& app, int& exit_code) {
  CLI::App* audit = app.add_subcommand("audit", "Audit log tools");
  audit->require_subcommand(1);
  auto options = std::make_shared<VerifyOptions>();
  CLI::App* verify_command = audit->add_subcommand(
      "verify", "Check that no line of an audit log was edited, deleted, added, moved or cut off");
  verify_command
      ->add_option("files", options->files,
                   "Audit log files, oldest first (e.g. audit.log.2 audit.log.1 audit.log): the "
                   "chain is followed across them")
      ->required();
  verify_command->add_option("--key-file", options->key_file,
                             "The [audit] key_file the log was written with (required for a "
                             "keyed log)");
  verify_command->add_flag("--live", options->checks.live,
                           "The last file is still being written: it need not end with a stop "
                           "or rotate record (compare its last seq with xks_audit_sequence)");
  verify_command->add_flag("--unkeyed", options->checks.allow_unkeyed,
                           "Accept a log written without key_file (plain SHA-256, which anyone "
                           "can recompute)");
  verify_command->add_flag("--allow-unclean", options->allow_unclean,
                           "Do not fail on restarts that followed no stop record (crashes)");
  verify_command->add_option("--expect-last-seq", options->expect_last_seq,
                             "Fail unless the last line has this seq (from the operational "
                             "log's stop or rotate message, or xks_audit_sequence)");
  verify_command->callback([options, &exit_code] { exit_code = verify(*options); });
}

}  // namespace xks::proxy
