// Verifying audit logs from the command line.
#include "audit_command.h"

#include <iostream>
#include <memory>

#include "xks/proxy/ops/audit_log.h"

namespace xks::proxy {

void add_audit_command(CLI::App& app, int& exit_code) {
  CLI::App* audit = app.add_subcommand("audit", "Audit log tools");
  audit->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  CLI::App* verify = audit->add_subcommand(
      "verify", "Check that no line of an audit log was edited, deleted, added or moved");
  verify->add_option("file", *path, "The audit log")->required();
  verify->callback([path, &exit_code] {
    AuditVerification result = verify_audit_file(*path);
    if (result.first_bad_line != 0) {
      std::cout << *path << ": line " << result.first_bad_line << ": " << result.reason << "\n";
      exit_code = 1;
      return;
    }
    std::cout << *path << ": " << result.lines << " lines, chain intact\n";
    exit_code = 0;
  });
}

}  // namespace xks::proxy
