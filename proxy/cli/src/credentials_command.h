// `xks-proxy credentials new --uri-path P`: a fresh SigV4 credential and its KMS console JSON.
#pragma once

#include <CLI/CLI.hpp>

namespace xks::proxy {

void add_credentials_command(CLI::App& app, int& exit_code);

}  // namespace xks::proxy
