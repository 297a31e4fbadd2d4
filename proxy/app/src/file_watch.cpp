// Watching configuration files with inotify.
#include "xks/proxy/app/file_watch.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

namespace xks::proxy {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE;
// Kubernetes' atomic writer swaps this symlink to publish a new version of every file.
constexpr std::string_view kKubernetesData = "..data";

}  // namespace

FileWatch::FileWatch(std::function<std::vector<std::string>()> paths, std::function<void()> changed)
    : paths_(std::move(paths)),
      changed_(std::move(changed)),
      fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
  if (fd_ < 0) {
    spdlog::warn("reload_on_change: inotify is not available; reload with SIGHUP");
    return;
  }
  thread_ = std::jthread([this](std::stop_token stop) { run(std::move(stop)); });
}

FileWatch::~FileWatch() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  if (fd_ >= 0)
    ::close(fd_);
}

void FileWatch::run(std::stop_token stop) {
  std::map<int, std::set<std::string>> names;  // watch descriptor -> file names in that directory
  auto watch = [&] {
    for (const auto& [descriptor, _] : names)
      ::inotify_rm_watch(fd_, descriptor);
    names.clear();
    for (const std::string& path : paths_()) {
      fs::path file = fs::absolute(path);
      int descriptor = ::inotify_add_watch(fd_, file.parent_path().c_str(), kEvents);
      if (descriptor < 0) {
        spdlog::warn("reload_on_change: cannot watch {}", file.parent_path().string());
        continue;
      }
      names[descriptor].insert(file.filename().string());
      names[descriptor].insert(std::string(kKubernetesData));
    }
  };
  watch();
  // When a change seen is to be acted on (max: none pending).
  Clock::time_point settled = Clock::time_point::max();
  alignas(inotify_event) std::array<char, 4096> buffer{};
  while (!stop.stop_requested()) {
    pollfd ready{fd_, POLLIN, 0};
    ::poll(&ready, 1, 100);  // also how often a stop is noticed
    for (ssize_t n; (n = ::read(fd_, buffer.data(), buffer.size())) > 0;) {
      for (ssize_t at = 0; at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
        auto found = names.find(event->wd);
        if (found != names.end() && event->len > 0 && found->second.contains(event->name))
          settled = Clock::now() + kSettle;
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    if (Clock::now() >= settled) {
      settled = Clock::time_point::max();
      changed_();
      watch();
    }
  }
}

}  // namespace xks::proxy
