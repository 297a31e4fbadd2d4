// Printing a new credential for a key store.
#include "credentials_command.h"

#include <iostream>
#include <memory>

#include "xks/proxy/cli/credentials.h"
#include "xks/proxy/config/config.h"

namespace xks::proxy {

void add_credentials_command(CLI::App& app, int& exit_code) {
  CLI::App* credentials = app.add_subcommand("credentials", "SigV4 credentials for key stores");
  credentials->require_subcommand(1);
  auto uri_path = std::make_shared<std::string>();
  CLI::App* create = credentials->add_subcommand(
      "new", "Print a new credential as the KMS console imports it (keep the output secret)");
  create
      ->add_option("--uri-path", *uri_path,
                   "The key store's XksProxyUriPath, e.g. /tenant/kms/xks/v1")
      ->required();
  create->callback([uri_path, &exit_code] {
    constexpr std::string_view kApi = "/kms/xks/v1";
    bool valid =
        uri_path->ends_with(kApi) &&
        is_valid_uri_prefix(std::string_view(*uri_path).substr(0, uri_path->size() - kApi.size()));
    if (!valid) {
      std::cerr << "xks-proxy credentials new: --uri-path must be [/prefix]/kms/xks/v1, at most "
                   "128 characters of A-Z a-z 0-9 / _ -\n";
      exit_code = 2;
      return;
    }
    std::cout << kms_console_json(*uri_path, generate_credential());
    exit_code = 0;
  });
}

}  // namespace xks::proxy
