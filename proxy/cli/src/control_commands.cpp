// Acting on a running proxy: the kill switch and reloads.
#include "control_commands.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "xks/proxy/config/config.h"
#include "xks/proxy/config/config_edit.h"

namespace xks::proxy {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct BlockOptions {
  std::string prefix;
  std::string config;
  std::string reason;
  std::string by;
  int pid = 0;
};

// The operator, for the audit log: --by, else the login behind sudo, else the user.
std::string invoking_user() {
  if (const char* sudo = std::getenv("SUDO_USER"))
    return sudo;
  if (const passwd* user = ::getpwuid(::getuid()))
    return user->pw_name;
  return "uid " + std::to_string(::getuid());
}

// Replaces `path` by `text` at once (a reader sees the old file or the new one), keeping its
// mode and owner.
bool replace_file(const fs::path& path, const std::string& text, std::string& error) {
  struct stat original {};
  if (::stat(path.c_str(), &original) != 0) {
    error = "cannot stat " + path.string();
    return false;
  }
  // The new file is owned by whoever writes it: only root can give it the old owner, so anyone
  // else must be that owner (or the proxy might not be able to read its configuration).
  if (::geteuid() != 0 && original.st_uid != ::geteuid()) {
    error = path.string() + " belongs to uid " + std::to_string(original.st_uid) +
            ": run this as that user or as root";
    return false;
  }
  fs::path temporary = path;
  temporary += ".xks-edit-" + std::to_string(::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot write next to " + path.string();
    return false;
  }
  bool ok = ::fchown(fd, original.st_uid, original.st_gid) == 0 &&
            ::fchmod(fd, original.st_mode & 07777) == 0;
  for (std::size_t written = 0; ok && written < text.size();) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    ok = n > 0;
    written += ok ? static_cast<std::size_t>(n) : 0;
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    error = "cannot replace " + path.string();
    return false;
  }
  // The rename itself survives a crash once the directory is synced.
  int directory = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory >= 0) {
    ::fsync(directory);
    ::close(directory);
  }
  return true;
}

std::vector<std::string> command_line(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> arguments;
  for (std::string argument; std::getline(file, argument, '\0');)
    arguments.push_back(argument);
  return arguments;
}

// A path from another process's command line, made absolute from its working directory (when
// that can be read) and resolved.
fs::path resolved(int pid, const std::string& path) {
  std::error_code error;
  fs::path candidate(path);
  if (candidate.is_relative()) {
    fs::path cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", error);
    if (!error)
      candidate = cwd / candidate;
  }
  fs::path real = fs::canonical(candidate, error);
  return error ? candidate : real;
}

// The xks-proxy processes serving `config`: `serve --config FILE`, or `demo` whose state
// directory holds it.
std::vector<int> proxies_serving(const fs::path& config) {
  std::vector<int> found;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    int pid = std::stoi(name);
    if (pid == ::getpid())
      continue;
    // Only processes this user may signal (root: any): another user's look-alike is no proxy
    // of ours, and must not stop the search.
    struct stat owner {};
    if (::stat(entry.path().c_str(), &owner) != 0 ||
        (::geteuid() != 0 && owner.st_uid != ::geteuid()))
      continue;
    std::vector<std::string> arguments = command_line(pid);
    if (arguments.size() < 2 || fs::path(arguments[0]).filename() != "xks-proxy")
      continue;
    std::string mode = arguments[1];
    std::string given;
    for (std::size_t i = 2; i < arguments.size(); ++i) {
      const std::string& argument = arguments[i];
      std::string option = mode == "serve" ? "--config" : "--state-dir";
      if (argument == option && i + 1 < arguments.size())
        given = arguments[i + 1];
      else if (argument.starts_with(option + "="))
        given = argument.substr(option.size() + 1);
    }
    if (mode == "demo" && given.empty())
      given = ".xks-demo";  // DemoOptions' default
    if (mode == "demo")
      given += "/xks-proxy.toml";
    if ((mode == "serve" || mode == "demo") && !given.empty() && resolved(pid, given) == config)
      found.push_back(pid);
  }
  return found;
}

// GET /metrics from the admin listener; empty when it cannot be read.
std::string scrape(const ListenAddress& admin) {
  namespace net = boost::asio;
  namespace http = boost::beast::http;
  std::string host = admin.host == "0.0.0.0" ? "127.0.0.1"
                     : admin.host == "::"    ? "::1"
                                             : admin.host;
  try {
    net::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(2s);
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address(host), admin.port));
    http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
    request.set(http::field::host, host);
    http::write(stream, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return response.result() == http::status::ok ? response.body() : std::string();
  } catch (const std::exception&) {
    return {};
  }
}

// SIGHUP to `pid`, or to every xks-proxy serving `config`; the processes signalled, or nullopt
// (said why).
std::optional<std::vector<int>> signal_proxies(const fs::path& config, int pid) {
  std::vector<int> pids = pid != 0 ? std::vector<int>{pid} : proxies_serving(config);
  if (pids.empty()) {
    std::cerr << "xks-proxy: no running xks-proxy serves " << config.string()
              << ": the change applies when one starts or reloads (SIGHUP); --pid names one\n";
    return std::nullopt;
  }
  std::vector<int> signalled;
  for (int target : pids) {
    if (::kill(target, SIGHUP) == 0)
      signalled.push_back(target);
    else
      std::cerr << "xks-proxy: cannot signal process " << target << "\n";
  }
  if (signalled.empty())
    return std::nullopt;
  return signalled;
}

// Scrapes the admin listener until `done` says so, for at most 5 s.
bool poll_admin(const ListenAddress& admin, const std::function<bool(const std::string&)>& done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    if (done(scrape(admin)))
      return true;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

int set_block(const BlockOptions& options, bool blocked) {
  const std::string prefix = options.prefix == "/" ? "" : options.prefix;
  const std::string name = prefix.empty() ? "/" : prefix;
  std::error_code error;
  fs::path config = fs::canonical(options.config, error);
  if (error) {
    std::cerr << "xks-proxy keystore: cannot read " << options.config << "\n";
    return 2;
  }
  std::ifstream file(config);
  std::stringstream text;
  text << file.rdbuf();
  BlockConfig block;
  if (blocked) {
    block = {true, options.by.empty() ? invoking_user() : options.by, options.reason,
             std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())};
  }
  auto edited = with_keystore_block(text.str(), config.string(), prefix, block);
  if (!edited) {
    std::cerr << "xks-proxy keystore: " << edited.error() << "\n";
    return 2;
  }
  auto server = load_server_config(config.string());
  if (!server) {
    std::cerr << "xks-proxy keystore: " << server.error() << "\n";
    return 2;
  }
  std::string failure;
  if (!replace_file(config, *edited, failure)) {
    std::cerr << "xks-proxy keystore: " << failure << "\n";
    return 2;
  }
  std::cout << config.string() << ": key store " << name << " "
            << (blocked ? "blocked by " + block.by : std::string("unblocked")) << "\n";

  auto pids = signal_proxies(config, options.pid);
  if (!pids)
    return 1;
  // Confirmed by the proxy itself: its kill switch gauge says so once the reload is applied.
  const std::string expected =
      "xks_keystore_blocked{keystore=\"" + prefix + "\"} " + (blocked ? "1" : "0") + "\n";
  std::string metrics;
  bool confirmed = poll_admin(server->admin_listen, [&](const std::string& scraped) {
    metrics = scraped;
    return scraped.find(expected) != std::string::npos;
  });
  if (confirmed) {
    std::cout << "confirmed: process " << pids->front() << " "
              << (blocked ? "refuses every key operation of " + name : "serves " + name + " again")
              << "\n";
    return 0;
  }
  std::cerr << "xks-proxy keystore: signalled process " << pids->front()
            << " but its admin listener does not confirm the change"
            << (metrics.find("xks_config_last_reload_successful 0") != std::string::npos
                    ? " (it refused the configuration: see its log)"
                    : "")
            << "\n";
  return 1;
}

// A series' value in a scrape; -1 when absent.
double metric_value(const std::string& metrics, const std::string& series) {
  std::size_t at = metrics.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(metrics.substr(at + series.size() + 2));
}

int reload(const std::string& config_option, int pid) {
  std::error_code error;
  fs::path config = fs::canonical(config_option, error);
  if (error) {
    std::cerr << "xks-proxy reload: cannot read " << config_option << "\n";
    return 2;
  }
  auto server = load_server_config(config.string());
  if (!server) {
    std::cerr << "xks-proxy reload: " << server.error() << "\n";
    return 2;
  }
  const std::string succeeded = "xks_config_reloads_total{result=\"success\"}";
  const std::string failed = "xks_config_reloads_total{result=\"failure\"}";
  std::string before = scrape(server->admin_listen);
  auto pids = signal_proxies(config, pid);
  if (!pids)
    return 1;
  std::string after;
  bool answered = poll_admin(server->admin_listen, [&](const std::string& text) {
    after = text;
    return metric_value(text, succeeded) > metric_value(before, succeeded) ||
           metric_value(text, failed) > metric_value(before, failed);
  });
  if (!answered) {
    std::cerr << "xks-proxy reload: signalled process " << pids->front()
              << " but its admin listener does not report the reload\n";
    return 1;
  }
  if (metric_value(after, failed) > metric_value(before, failed)) {
    std::cerr << "xks-proxy reload: process " << pids->front()
              << " refused the configuration and keeps the running one: see its log\n";
    return 1;
  }
  std::cout << "reloaded: process " << pids->front() << " serves " << config.string()
            << (metric_value(after, "xks_config_restart_required") == 1
                    ? " (some changed settings need a restart: see its log)"
                    : "")
            << "\n";
  return 0;
}

}  // namespace

void tell_serving_proxies_keys_changed(const std::string& config) {
  std::error_code error;
  fs::path path = fs::canonical(config, error);
  auto server = load_server_config(config);
  if (error || !server)
    return;
  const auto signalled_at = std::chrono::system_clock::now();
  std::vector<int> signalled;
  for (int pid : proxies_serving(path)) {
    if (::kill(pid, SIGHUP) == 0)
      signalled.push_back(pid);
  }
  if (signalled.empty()) {
    std::cout << "no running xks-proxy serves " << config
              << ": a proxy reads its keys again within 10 s, or on SIGHUP\n";
    return;
  }
  // Every HSM's keys read again after the signal.
  const double since = std::chrono::duration<double>(signalled_at.time_since_epoch()).count();
  const std::string series = "\nxks_hsm_keys_read_timestamp_seconds{";
  bool confirmed = poll_admin(server->admin_listen, [&](const std::string& scraped) {
    bool any = false;
    for (std::size_t at = scraped.find(series); at != std::string::npos;
         at = scraped.find(series, at + 1)) {
      std::size_t value = scraped.find("} ", at);
      if (value == std::string::npos || std::stod(scraped.substr(value + 2)) < since)
        return false;
      any = true;
    }
    return any;
  });
  std::cout << "the proxy serving " << config << " (process " << signalled.front() << ") "
            << (confirmed ? "has read its keys again"
                          : "was told to read its keys again, and has not confirmed it yet "
                            "(it does so within 10 s)")
            << "\n";
}

void add_control_commands(CLI::App& app, int& exit_code) {
  CLI::App* keystore = app.add_subcommand("keystore", "The owner's kill switch for a key store");
  keystore->require_subcommand(1);
  auto options = std::make_shared<BlockOptions>();
  for (bool blocked : {true, false}) {
    CLI::App* command = keystore->add_subcommand(
        blocked ? "block" : "unblock",
        blocked ? "Refuse every Encrypt, Decrypt and GetKeyMetadata of a key store now "
                  "(GetHealthStatus still answers): sets blocked in the configuration and "
                  "reloads the running proxy"
                : "Serve a blocked key store again");
    command->add_option("prefix", options->prefix, "The key store's prefix (/ for none)")
        ->required();
    command->add_option("--config", options->config, "The running proxy's configuration file")
        ->required();
    if (blocked) {
      command->add_option("--reason", options->reason, "Why (recorded in the audit log)");
      command->add_option("--by", options->by, "Who (default: the invoking user)");
    }
    command->add_option("--pid", options->pid,
                        "The proxy process to signal (default: every xks-proxy serving the file)");
    command->callback([options, blocked, &exit_code] { exit_code = set_block(*options, blocked); });
  }
  auto reload_options = std::make_shared<std::pair<std::string, int>>();  // config, pid
  CLI::App* reload_command = app.add_subcommand(
      "reload",
      "Reload a running proxy's configuration (SIGHUP) and report whether it was applied");
  reload_command->add_option("--config", reload_options->first, "Its configuration file")
      ->required();
  reload_command->add_option("--pid", reload_options->second,
                             "The process (default: every xks-proxy serving the file)");
  reload_command->callback([reload_options, &exit_code] {
    exit_code = reload(reload_options->first, reload_options->second);
  });
}

}  // namespace xks::proxy
