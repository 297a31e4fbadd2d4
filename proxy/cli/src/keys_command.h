// `xks-proxy keys create|list`: key administration on the HSM token.
#pragma once

#include <CLI/CLI.hpp>

namespace xks::proxy {

// Adds the `keys` command and its subcommands to `app`; they run from their callbacks and
// set `exit_code`.
void add_keys_command(CLI::App& app, int& exit_code);

}  // namespace xks::proxy
