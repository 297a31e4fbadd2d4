// Commands that act on a running proxy through its configuration file, a signal and its admin
// listener:
// - `xks-proxy keystore block|unblock PREFIX --config FILE`: the owner's kill switch. It sets
//   the key store's `blocked` in the file, signals the proxy serving it to reload (SIGHUP) and
//   waits until the proxy's admin listener reports the new state.
// - `xks-proxy reload --config FILE`: SIGHUP to the proxy serving the file, and its verdict.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace xks::proxy {

void add_control_commands(CLI::App& app, int& exit_code);

// After a change of the HSMs' keys: SIGHUP to every xks-proxy serving `config` that this user
// may signal, then waits (at most 5 s) until its admin listener reports every HSM's keys read
// again. Says what happened on standard output.
void tell_serving_proxies_keys_changed(const std::string& config);

}  // namespace xks::proxy
