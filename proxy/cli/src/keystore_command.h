// `xks-proxy keystore block|unblock PREFIX --config FILE`: the owner's kill switch. It sets the
// key store's `blocked` in the configuration file, signals the running proxy to reload (SIGHUP)
// and waits until the proxy's admin listener reports the new state.
#pragma once

#include <CLI/CLI.hpp>

namespace xks::proxy {

void add_keystore_command(CLI::App& app, int& exit_code);

}  // namespace xks::proxy
