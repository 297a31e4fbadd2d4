// Verifying audit logs from the command line.
#include "audit_command.h"

#include <iostream>
#include <memory>
#include <optional>

#include "xks/proxy/ops/audit_chain.h"

namespace xks::proxy {

namespace {

struct VerifyOptions {
  std::vector<std::string> files;
  std::string key_file;
  bool live = false;
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
  AuditVerification result = verify_audit_files(options.files, key ? &*key : nullptr, options.live);
  for (const std::string& place : result.unclean) {
    std::cout << place << ": restart after no stop record (a crash, or lines cut off before it)\n";
  }
  if (result.first_bad_line != 0) {
    std::cout << result.bad_file << ": line " << result.first_bad_line << ": " << result.reason
              << "\n";
    return 1;
  }
  std::cout << result.lines << " lines in " << options.files.size() << " file(s), chain intact"
            << (key ? " (HMAC checked)" : "") << "; last seq " << result.head.seq << ", chain "
            << result.head.chain << "\n";
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
  verify_command->add_flag("--live", options->live,
                           "The last file is still being written: it need not end with a stop "
                           "or rotate record (compare its last seq with xks_audit_sequence)");
  verify_command->callback([options, &exit_code] { exit_code = verify(*options); });
}

}  // namespace xks::proxy
