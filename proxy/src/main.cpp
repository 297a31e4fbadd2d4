// xks-proxy command line. The XKS server is not built yet: `demo` says so plainly instead of
// pretending to run; `keys` administers AES keys on the HSM.
#include <CLI/CLI.hpp>
#include <iostream>

#include "keys_command.h"

int main(int argc, char** argv) {
  CLI::App app{"xks-proxy: an AWS KMS External Key Store proxy for PKCS#11 HSMs"};
  app.set_version_flag("--version", std::string("xks-proxy ") + XKS_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  app.add_subcommand("demo", "Serve the embedded demo (SoftHSM token, self-signed TLS)")
      ->callback([&exit_code] {
        std::cerr << "xks-proxy " << XKS_VERSION
                  << ": the XKS server is not built yet (issue \"XKS server\"); this build has "
                     "the SigV4 library, the HSM layer and `xks-proxy keys`. Nothing is "
                     "listening.\n";
        exit_code = 3;
      });
  xks::proxy::add_keys_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return exit_code;
}
