// `xks-proxy serve --config F` and `xks-proxy check --config F`.
#pragma once

#include <string>

namespace xks::proxy {

// Loads the config, opens the HSM, self-tests, builds TLS; prints what failed. 0 on success.
int check_command(const std::string& config_path);
// As check, then serves until SIGTERM. 0 after a clean drain.
int serve_command(const std::string& config_path);

}  // namespace xks::proxy
