// xks-proxy command line: parse, then hand over to one command.
#include <CLI/CLI.hpp>

#include "audit_command.h"
#include "authz_command.h"
#include "control_commands.h"
#include "credentials_command.h"
#include "demo_command.h"
#include "keys_command.h"
#include "serve_command.h"

int main(int argc, char** argv) {
  CLI::App app{"xks-proxy: an AWS KMS External Key Store proxy for PKCS#11 HSMs"};
  app.set_version_flag("--version", std::string("xks-proxy ") + XKS_PROXY_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;

  std::string config_path;
  CLI::App* serve = app.add_subcommand("serve", "Serve the XKS API as the configuration says");
  serve->add_option("--config", config_path, "TOML configuration file")->required();
  serve->callback([&] { exit_code = xks::proxy::serve_command(config_path); });
  CLI::App* check =
      app.add_subcommand("check", "Validate a configuration, open the HSM and self-test");
  check->add_option("--config", config_path, "TOML configuration file")->required();
  check->callback([&] { exit_code = xks::proxy::check_command(config_path); });

  xks::proxy::DemoOptions demo_options;
  CLI::App* demo = app.add_subcommand(
      "demo", "Serve the embedded demo: SoftHSM token, self-signed TLS, generated credential");
  demo->add_option("--state-dir", demo_options.state_dir, "Where the demo keeps its state")
      ->capture_default_str();
  demo->add_option("--port", demo_options.port, "HTTPS port on 127.0.0.1")->capture_default_str();
  demo->add_option("--admin-port", demo_options.admin_port, "Admin port on 127.0.0.1")
      ->capture_default_str();
  demo->add_flag("--mtls", demo_options.mtls, "Require the demo's client certificate");
  demo->add_flag("--setup-only", demo_options.setup_only, "Prepare the state, do not serve");
  demo->add_option("--backends", demo_options.backends,
                   "HSMs in the fleet (SoftHSM tokens holding the same keys)")
      ->check(CLI::Range(1u, 8u))
      ->capture_default_str();
  demo->add_option("--vendors", demo_options.vendors,
                   "Each HSM's PKCS#11 implementation: softhsm or nss (NSS softoken, at most "
                   "one), e.g. softhsm,nss with --backends 2")
      ->delimiter(',')
      ->check(CLI::IsMember({"softhsm", "nss"}));
  demo->add_option("--fault-dir", demo_options.fault_dir,
                   "Reach each HSM through the fault-injecting module, steered by "
                   "DIR/backend-K.ctl (for availability tests)");
  demo->callback([&] { exit_code = xks::proxy::demo_command(demo_options); });

  xks::proxy::add_keys_command(app, exit_code);
  xks::proxy::add_credentials_command(app, exit_code);
  xks::proxy::add_audit_command(app, exit_code);
  xks::proxy::add_authz_command(app, exit_code);
  xks::proxy::add_control_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return exit_code;
}
