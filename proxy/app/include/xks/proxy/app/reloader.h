// Live reconfiguration (README "Reloading the configuration"): SIGHUP reads the configuration
// file again and applies, without dropping a connection or a request in flight, what can change
// live: the TLS certificate chain, key, client CA and names (new handshakes use them; the files
// are read again even when their paths are unchanged), the key stores (credentials, keys, rules,
// quotas, kill switch) and the log level. A request under way finishes with the configuration
// it started with.
//
// A file that does not load (a syntax error, a bad value, a certificate that does not parse) is
// refused with the same file:line message as at start, and the running configuration keeps
// serving. Sections that cannot change live ([server], [hsm], [audit], [log] format) are
// reported as needing a restart and keep their running values.
//
// Reported in xks_config_reloads_total{result}, xks_config_last_reload_successful,
// xks_config_last_reload_success_timestamp_seconds, xks_config_restart_required, the
// operational log and the audit log.
#pragma once

#include <mutex>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "xks/proxy/app/runtime.h"
#include "xks/proxy/config/config.h"
#include "xks/proxy/ops/metrics.h"
#include "xks/proxy/transport/server.h"

namespace xks::proxy {

class Reloader {
 public:
  // `running` is the configuration `runtime` and `server` were started with.
  Reloader(std::string config_path, Config running, Runtime& runtime, Server& server);

  struct Applied {
    std::vector<std::string> needs_restart;  // sections changed in the file but not applied
  };
  // Reads and applies the file; any thread, one reload at a time.
  tl::expected<Applied, std::string> reload();

  // What a change of is a reason to reload ([server] reload_on_change): the configuration
  // file, the TLS files and the SigV4 secret files.
  std::vector<std::string> watched_files();

 private:
  // The values of the secret_env and pin_env variables the running configuration read: the
  // variables themselves are scrubbed once the configuration is loaded at start.
  std::optional<std::string> environment(const std::string& name) const;
  tl::expected<Applied, std::string> apply(const std::string& path);
  void record(bool success, const std::string& detail);

  const std::string config_path_;
  Config running_;  // what is applied: the live sections as last reloaded
  Runtime& runtime_;
  Server& server_;
  std::mutex mutex_;
  metrics::Counter* succeeded_;
  metrics::Counter* failed_;
  metrics::Gauge* last_successful_;
  metrics::Gauge* last_success_time_;
  metrics::Gauge* restart_required_;
};

}  // namespace xks::proxy
