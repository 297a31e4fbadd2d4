// `xks-proxy authz explain --config FILE --request FILE.json`: which key store rule decides a
// request, so that operators can test a policy before they deploy it.
#pragma once

#include <CLI/CLI.hpp>

namespace xks::proxy {

void add_authz_command(CLI::App& app, int& exit_code);

}  // namespace xks::proxy
