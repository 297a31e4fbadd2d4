// xks-load: a load generator that signs every request the way AWS KMS does. It runs a workload
// mix over HTTP/1.1 or HTTP/2, closed or open loop, optionally through an availability scenario
// that drives the fault-injecting PKCS#11 module, and reports latency percentiles, errors and
// throughput as text, JSON and a self-contained HTML page.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "client.h"
#include "probe.h"
#include "report.h"
#include "run_inputs.h"

namespace {

using namespace xks::load;

struct Flags {
  std::string kms_console;
  std::string secret_file;
  std::string mix = "encrypt:1";
  std::string http = "1.1";
  double seconds = 10;
  double ramp_up = 0;
  double rate = 0;
  std::uint64_t max_requests = 0;
  unsigned warm_up_per_key = 16;
  std::string scenario;
  std::string fault_control;
  std::string fault_dir;
  std::string json_file;
  std::string html_file;
};

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "encrypt:3,decrypt:1" into weights; an error names the bad part.
tl::expected<std::array<unsigned, 4>, std::string> parse_mix(const std::string& text) {
  std::array<unsigned, 4> weights{};
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    auto colon = part.find(':');
    std::string name = part.substr(0, colon);
    unsigned weight = 1;
    if (colon != std::string::npos) {
      const std::string number = part.substr(colon + 1);
      if (number.empty() || number.size() > 6 ||
          number.find_first_not_of("0123456789") != std::string::npos)
        return tl::unexpected("--mix: bad weight in '" + part + "'");
      weight = static_cast<unsigned>(std::stoul(number));
    }
    auto it = std::find_if(kMixOrder.begin(), kMixOrder.end(), [&](Operation operation) {
      return xks::wire::uri_name(operation) == name;
    });
    if (it == kMixOrder.end())
      return tl::unexpected("--mix: unknown operation '" + name +
                            "' (encrypt, decrypt, metadata, health)");
    weights[static_cast<std::size_t>(it - kMixOrder.begin())] = weight;
  }
  if (std::all_of(weights.begin(), weights.end(), [](unsigned w) { return w == 0; }))
    return tl::unexpected(std::string("--mix: every weight is zero"));
  return weights;
}

// Replaces a fault module's control file in one step, so it never reads half of it.
bool write_control_file(const std::string& path, const std::vector<std::string>& faults) {
  std::string temporary = path + ".xks-load";
  {
    std::ofstream out(temporary, std::ios::trunc);
    for (const std::string& fault : faults)
      out << fault << "\n";
    if (!out)
      return false;
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  return !error;
}

// Where the scenario's faults go: one control file (--fault-control), or one per HSM of a fleet
// (--fault-dir DIR: DIR/backend-K.ctl, as `xks-proxy demo --fault-dir` makes them). A line
// "backend-K: <fault>" is for that HSM only; other lines are for every HSM.
struct FaultFiles {
  std::vector<std::filesystem::path> paths;  // none: no faults are written

  static tl::expected<FaultFiles, std::string> of(const Flags& flags) {
    FaultFiles files;
    if (!flags.fault_control.empty())
      files.paths.emplace_back(flags.fault_control);
    if (flags.fault_dir.empty())
      return files;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(flags.fault_dir, error)) {
      const std::filesystem::path& path = entry.path();
      if (path.extension() == ".ctl" && path.stem().string().starts_with("backend-"))
        files.paths.push_back(path);
    }
    if (error || files.paths.empty())
      return tl::unexpected("no backend-K.ctl control files in " + flags.fault_dir);
    std::sort(files.paths.begin(), files.paths.end());
    return files;
  }

  // The HSM a line names ("backend-2" of "backend-2: hang C_Encrypt 3000"), or nothing.
  static std::optional<std::string> target(const std::string& line) {
    auto colon = line.find(':');
    if (!line.starts_with("backend-") || colon == std::string::npos)
      return std::nullopt;
    return line.substr(0, colon);
  }

  // Whether every line's HSM has a control file here.
  tl::expected<void, std::string> check(const std::vector<std::string>& faults) const {
    for (const std::string& line : faults) {
      auto named = target(line);
      if (!named)
        continue;
      if (line.find_first_not_of(' ', named->size() + 1) == std::string::npos)
        return tl::unexpected("'" + line + "': no fault after the HSM's name");
      bool known = std::any_of(paths.begin(), paths.end(),
                               [&](const auto& path) { return path.stem() == *named; });
      if (!known)
        return tl::unexpected("'" + line + "': no control file for " + *named +
                              " (use --fault-dir)");
    }
    return {};
  }

  bool apply(const std::vector<std::string>& faults) const {
    bool written = true;
    for (const auto& path : paths) {
      std::vector<std::string> own;
      for (const std::string& line : faults) {
        auto named = target(line);
        if (!named)
          own.push_back(line);
        else if (*named == path.stem().string())
          own.push_back(line.substr(line.find_first_not_of(' ', named->size() + 1)));
      }
      written = write_control_file(path.string(), own) && written;
    }
    return written;
  }
};

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string fixed_rate(double rate) {
  std::ostringstream text;
  text << rate;
  return text.str();
}

// Where the proxy is and who we are to it: the flags `xks-load` and `xks-load probe` share.
void add_connection_options(CLI::App& app, ClientOptions& options, Flags& flags) {
  app.add_option("--kms-console", flags.kms_console,
                 "kms-console.json with the URI path and credential (and endpoint, if present)");
  app.add_option("--host", options.target.host)->capture_default_str();
  app.add_option("--port", options.target.port)->capture_default_str();
  app.add_option("--prefix", options.target.uri_prefix, "Key store URI prefix")
      ->capture_default_str();
  app.add_option("--cacert", options.ca_file, "CA to verify the proxy (default: system store)");
  app.add_option("--client-cert", options.client_certificate, "Client certificate for mTLS");
  app.add_option("--client-key", options.client_key, "Client key for mTLS");
  app.add_option("--access-key-id", options.target.access_key_id);
  app.add_option("--secret-file", flags.secret_file, "File with the SigV4 secret");
  app.add_option("--region", options.target.region)->capture_default_str();
  app.add_option("--timeout", options.timeout_seconds, "Seconds per request")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
}

void add_load_options(CLI::App& app, ClientOptions& options, WorkloadMix& mix, Flags& flags) {
  app.add_option("--key", mix.key_ids, "External key id (repeat or comma-separate)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--mix", flags.mix, "Weights, e.g. encrypt:3,decrypt:3,metadata:1,health:1")
      ->capture_default_str();
  app.add_option("--plaintext-bytes", mix.plaintext_bytes)
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  app.add_option("--aad-bytes", mix.aad_bytes, "AAD per request (0: none)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{8192}))
      ->capture_default_str();
  app.add_flag("--cdiv", mix.cdiv, "Ask Encrypt for a ciphertext data integrity value");
  app.add_flag("--verify", options.verify,
               "Check every answer: decrypts return the original plaintext, CDIVs are right");
  app.add_option("--http", flags.http)->check(CLI::IsMember({"1.1", "2"}))->capture_default_str();
  app.add_option("--connections", options.connections)
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("--streams", options.streams, "Requests in flight per HTTP/2 connection")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  app.add_option("--threads", options.threads)->check(CLI::Range(1u, 256u))->capture_default_str();
  app.add_option("--seconds", flags.seconds, "Run time after ramp-up (ignored with --scenario)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--requests", flags.max_requests, "Request count bound (0: none)")
      ->capture_default_str();
  app.add_option("--rate", flags.rate,
                 "Open loop: requests per second in total, latency counted from when each was "
                 "due (0: closed loop)")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--ramp-up", flags.ramp_up,
                 "Seconds to ramp the rate (or start the connections) before measuring")
      ->check(CLI::Range(0.0, 600.0));
  app.add_flag("--new-connection", options.new_connection_per_request,
               "A new TLS connection for every request (measures handshake cost)");
  app.add_option("--warm-up-ciphertexts", flags.warm_up_per_key,
                 "Ciphertexts made per key before the run, for decrypts")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  app.add_option("--scenario", flags.scenario, "Availability scenario (TOML phases)");
  app.add_option("--fault-control", flags.fault_control,
                 "The fault module's control file (XKS_FAULT_CONTROL) the scenario writes");
  app.add_option("--fault-dir", flags.fault_dir,
                 "A fleet's fault control files (DIR/backend-K.ctl, from xks-proxy demo "
                 "--fault-dir); a fault line 'backend-K: ...' is for that HSM only");
  app.add_option("--json", flags.json_file, "Write the result as JSON");
  app.add_option("--html", flags.html_file, "Write a self-contained HTML report");
}

// The target and credential from the flags (a kms-console.json fills in what the flags leave
// out).
tl::expected<void, std::string> resolve_target(const CLI::App& app, const Flags& flags,
                                               ClientOptions& options) {
  if (!flags.kms_console.empty()) {
    auto text = read_file(flags.kms_console);
    if (!text)
      return tl::unexpected("cannot read " + flags.kms_console);
    auto settings = parse_kms_console(*text);
    if (!settings)
      return tl::unexpected(settings.error());
    if (app.count("--prefix") == 0)
      options.target.uri_prefix = settings->uri_prefix;
    if (app.count("--access-key-id") == 0)
      options.target.access_key_id = settings->access_key_id;
    if (app.count("--secret-file") == 0)
      options.target.secret_access_key = settings->secret_access_key;
    if (!settings->endpoint_host.empty() && app.count("--host") == 0)
      options.target.host = settings->endpoint_host;
    if (!settings->endpoint_port.empty() && app.count("--port") == 0)
      options.target.port = settings->endpoint_port;
  }
  if (!flags.secret_file.empty()) {
    auto text = read_file(flags.secret_file);
    if (!text)
      return tl::unexpected("cannot read the secret from " + flags.secret_file);
    options.target.secret_access_key = text->substr(0, text->find_first_of("\r\n"));
  }
  if (options.target.access_key_id.empty() || options.target.secret_access_key.empty())
    return tl::unexpected(
        std::string("no credential: give --kms-console, or --access-key-id and --secret-file"));
  if (options.client_certificate.empty() != options.client_key.empty())
    return tl::unexpected(std::string("--client-cert and --client-key go together"));
  return {};
}

// The mix and protocol of a load run.
tl::expected<void, std::string> resolve_load(const Flags& flags, ClientOptions& options,
                                             WorkloadMix& mix) {
  if (mix.key_ids.empty())
    return tl::unexpected(std::string("--key: at least one key id"));
  auto weights = parse_mix(flags.mix);
  if (!weights)
    return tl::unexpected(weights.error());
  mix.weights = *weights;
  options.http2 = flags.http == "2";
  bool faults = !flags.fault_control.empty() || !flags.fault_dir.empty();
  if (flags.scenario.empty() == faults)
    return tl::unexpected(
        std::string("--scenario goes with --fault-control or --fault-dir (and they with it)"));
  return {};
}

// Ramp-up (not counted in the summary), then the scenario's phases or one steady phase.
tl::expected<std::vector<PhasePlan>, std::string> plan_phases(const Flags& flags) {
  std::vector<PhasePlan> phases;
  if (flags.ramp_up > 0)
    phases.push_back({"ramp-up", 0, flags.ramp_up, {}, false});
  if (!flags.scenario.empty()) {
    auto text = read_file(flags.scenario);
    if (!text)
      return tl::unexpected("cannot read " + flags.scenario);
    auto scenario = parse_scenario(*text);
    if (!scenario)
      return tl::unexpected(scenario.error());
    for (Phase& phase : *scenario)
      phases.push_back({phase.name, 0, phase.seconds, std::move(phase.faults), true});
  } else {
    phases.push_back({"steady", 0, flags.seconds, {}, true});
  }
  double total_seconds = 0;
  for (PhasePlan& phase : phases) {
    phase.start_seconds = total_seconds;
    total_seconds += phase.seconds;
  }
  return phases;
}

// One line that says how the load was made, for the reports.
std::string describe(const ClientOptions& options, const WorkloadMix& mix, const Flags& flags) {
  std::ostringstream description;
  description << (options.http2 ? "HTTP/2" : "HTTP/1.1") << ", "
              << (flags.rate > 0 ? "open loop at " + fixed_rate(flags.rate) + " req/s"
                                 : std::string("closed loop"))
              << ", " << options.connections << " connections";
  if (options.http2)
    description << " x " << options.streams << " streams";
  if (options.new_connection_per_request)
    description << ", a new connection per request";
  description << ", " << options.threads << " threads, mix " << flags.mix << ", "
              << mix.plaintext_bytes << " B plaintext, " << mix.aad_bytes << " B AAD"
              << (mix.cdiv ? ", CDIV" : "") << (options.verify ? ", verified" : "");
  return description.str();
}

// Keeps time on the calling thread while `finished` is false: writes each phase's faults to
// the control file as the phase begins, and prints a live line per second on a terminal.
void keep_time(const std::atomic<bool>& finished, Clock::time_point start,
               const std::vector<PhasePlan>& phases, std::size_t second_count,
               const FaultFiles& fault_files,
               const std::vector<std::unique_ptr<Recorder>>& recorders) {
  const bool live = isatty(STDERR_FILENO) != 0;
  std::size_t next_phase = 0;
  std::size_t next_second = 1;
  while (!finished) {
    auto now = Clock::now();
    while (next_phase < phases.size() &&
           seconds_between(start, now) >= phases[next_phase].start_seconds) {
      if (!fault_files.apply(phases[next_phase].faults))
        std::cerr << "xks-load: cannot write the fault control files\n";
      ++next_phase;
    }
    if (live && next_second <= second_count &&
        seconds_between(start, now) >= static_cast<double>(next_second)) {
      SecondStats second;
      for (const auto& recorder : recorders)
        recorder->add_second(next_second - 1, second);
      std::cerr << live_line(next_second - 1, second) << "\n";
      ++next_second;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

tl::expected<void, std::string> write_reports(const RunReport& report, const Flags& flags) {
  if (!flags.json_file.empty()) {
    std::ofstream json(flags.json_file, std::ios::trunc);
    json << json_report(report);
    if (!json)
      return tl::unexpected("cannot write " + flags.json_file);
  }
  if (!flags.html_file.empty()) {
    std::ofstream html(flags.html_file, std::ios::trunc);
    html << html_report(report);
    if (!html)
      return tl::unexpected("cannot write " + flags.html_file);
  }
  return {};
}

int fail(const std::string& message) {
  std::cerr << "xks-load: " << message << "\n";
  return 2;
}

// `xks-load probe`: 0 when every check passed, 1 when one failed.
int run_probe(const CLI::App& command, const Flags& flags, ClientOptions& options,
              const std::vector<std::string>& key_ids, unsigned budget_ms) {
  if (auto resolved = resolve_target(command, flags, options); !resolved)
    return fail(resolved.error());
  ProbeReport report = probe(options, key_ids, std::chrono::milliseconds(budget_ms));
  if (flags.json_file == "-") {
    std::cout << probe_json(report);
  } else {
    std::cout << probe_text(report);
    if (!flags.json_file.empty()) {
      std::ofstream json(flags.json_file, std::ios::trunc);
      json << probe_json(report);
      if (!json)
        return fail("cannot write " + flags.json_file);
    }
  }
  return report.passed() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ClientOptions options;
  options.target.port = "8443";
  options.target.uri_prefix = "/example";
  options.threads = std::max(1u, std::thread::hardware_concurrency());
  WorkloadMix mix;
  Flags flags;
  CLI::App app{"xks-load: a load generator that signs requests as AWS KMS does, for XKS proxies"};
  add_connection_options(app, options, flags);
  add_load_options(app, options, mix, flags);

  ClientOptions probe_options;
  probe_options.target.port = "443";
  Flags probe_flags;
  std::vector<std::string> probe_keys;
  unsigned probe_budget_ms = static_cast<unsigned>(kKmsCallBudget.count());
  CLI::App* probe_command = app.add_subcommand(
      "probe",
      "Check a deployed proxy the way KMS does before it connects a key store (DNS, TCP, TLS "
      "with the system's trust store, URI path, SigV4, GetHealthStatus), then GetKeyMetadata and "
      "an Encrypt/Decrypt round trip for each --key; a failure names the ConnectionErrorCode or "
      "error KMS would report, its cause and the fix");
  add_connection_options(*probe_command, probe_options, probe_flags);
  probe_command
      ->add_option("--key", probe_keys, "External key id to check (repeat or comma-separate)")
      ->delimiter(',');
  probe_command
      ->add_option("--budget-ms", probe_budget_ms,
                   "Longest answer that passes (default KMS's 250 ms for a whole call; lower it "
                   "to check a latency target)")
      ->check(CLI::Range(1u, 600000u))
      ->capture_default_str();
  probe_command->add_option("--json", probe_flags.json_file,
                            "Write the result as JSON to FILE (-: instead of the text, on standard "
                            "output)");
  CLI11_PARSE(app, argc, argv);
  if (*probe_command)
    return run_probe(*probe_command, probe_flags, probe_options, probe_keys, probe_budget_ms);
  if (auto resolved = resolve_target(app, flags, options); !resolved)
    return fail(resolved.error());
  if (auto resolved = resolve_load(flags, options, mix); !resolved)
    return fail(resolved.error());
  auto phases = plan_phases(flags);
  if (!phases)
    return fail(phases.error());
  double total_seconds = phases->back().start_seconds + phases->back().seconds;

  std::shared_ptr<const std::vector<SealedRecord>> sealed;
  if (mix.weights[1] > 0) {
    auto records = warm_up(options, mix, flags.warm_up_per_key);
    if (!records)
      return fail(records.error());
    sealed = std::make_shared<const std::vector<SealedRecord>>(std::move(*records));
  }
  auto fault_files = FaultFiles::of(flags);
  if (!fault_files)
    return fail(fault_files.error());
  for (const PhasePlan& phase : *phases) {
    if (auto checked = fault_files->check(phase.faults); !checked)
      return fail(checked.error());
  }
  if (!fault_files->apply({}))
    return fail("cannot write the fault control files");

  RunReport report;
  report.target = "https://" + options.target.authority() + options.target.uri_prefix;
  report.description = describe(options, mix, flags);
  report.started_utc = utc_now();

  std::vector<double> phase_starts;
  for (const PhasePlan& phase : *phases)
    phase_starts.push_back(phase.start_seconds);
  auto start = Clock::now() + std::chrono::milliseconds(20);
  auto second_count = static_cast<std::size_t>(std::ceil(total_seconds));
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (unsigned i = 0; i < options.threads; ++i)
    recorders.push_back(std::make_unique<Recorder>(start, phase_starts, second_count));
  Schedule schedule(start, total_seconds - flags.ramp_up, flags.rate, flags.ramp_up,
                    flags.max_requests);

  std::atomic<bool> finished{false};
  tl::expected<void, std::string> outcome;
  std::thread load([&] {
    outcome = run_load(options, mix, sealed, schedule, recorders);
    finished = true;
  });
  keep_time(finished, start, *phases, second_count, *fault_files, recorders);
  load.join();
  fault_files->apply({});
  if (!outcome)
    return fail(outcome.error());

  report.elapsed_seconds = std::min(seconds_between(start, Clock::now()), total_seconds);
  report.unsent = schedule.unsent();
  report.phases = std::move(*phases);
  for (auto& recorder : recorders)
    report.stats.merge(recorder->take());
  print_summary(std::cout, report);
  if (auto written = write_reports(report, flags); !written)
    return fail(written.error());
  Totals total = totals(report);
  return total.all.requests > 0 && total.all.errors == 0 ? 0 : 1;
}
