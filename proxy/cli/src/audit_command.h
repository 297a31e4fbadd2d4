// `xks-proxy audit verify FILE`: checks an audit log's hash chain.
#pragma once

#include <CLI/CLI.hpp>

namespace xks::proxy {

void add_audit_command(CLI::App& app, int& exit_code);

}  // namespace xks::proxy
