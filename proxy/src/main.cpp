// xks-proxy command line. Only the SigV4 library exists so far; every command that needs the
// server says plainly that it is not there yet instead of pretending to run.
#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"xks-proxy: an AWS KMS External Key Store proxy for PKCS#11 HSMs"};
  app.set_version_flag("--version", std::string("xks-proxy ") + XKS_VERSION);
  app.require_subcommand(1);
  app.add_subcommand("demo", "Serve the embedded demo (SoftHSM token, self-signed TLS)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  std::cerr << "xks-proxy " << XKS_VERSION
            << ": the XKS server is not built yet (issue \"XKS server\"); this build contains "
               "the SigV4 library and its tests only. Nothing is listening.\n";
  return 3;
}
