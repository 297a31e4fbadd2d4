// Which connections a listener holds, and which it gives up when a limit is reached.
//
// A slot is cheap to take (a TCP connect) and dear to hold, so the limits are enforced by
// eviction rather than only by refusal: a client that opens silent sockets or finishes
// handshakes and sends nothing cannot lock out a client that makes signed requests.
// - max_handshakes: connections still in their TLS handshake. When full, the oldest handshake
//   of the client holding the most is closed for the newcomer (a slow or silent handshake is
//   the likely attacker), or, when the newcomer's client already holds
//   max_handshakes_per_client of them, that client's own oldest: one address cannot keep
//   everyone else's handshakes churning, while a client opening many connections at once is
//   not held back while slots are free.
// - max_connections: every connection of the listener. When full, the oldest unproven
//   connection (one that has not yet had a request authenticated, and has no request in
//   flight) is closed for the newcomer; with none, the newcomer is refused.
// - max_per_client: connections from one client, with the same rule inside that client.
//   (Behind a load balancer that does not keep client addresses, every connection comes from
//   its few addresses: size this for that, or set it to max_connections.)
// A client is an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation).
// Thread-safe: connections on every I/O thread share one table under one mutex, touched only
// when a connection opens, finishes its handshake, is first proven, or closes.
#pragma once

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tl/expected.hpp>

namespace xks::proxy {

class ConnectionTable {
 public:
  struct Limits {
    std::size_t max_connections = 0;
    std::size_t max_per_client = 0;
    std::size_t max_handshakes = 0;
    std::size_t max_handshakes_per_client = 0;
  };
  // The limit that refused a newcomer or evicted an older connection.
  enum class Limit : std::uint8_t { kConnections, kPerClient, kHandshakes };
  static constexpr std::size_t kLimitCount = 3;
  // Closes a connection chosen for eviction, soon and from its own thread; called from any
  // thread, at most once, never under the table's lock.
  using Evict = std::function<void()>;
  // Hears of every eviction, outside the lock (for metrics).
  using OnEvicted = std::function<void(Limit)>;

 private:
  struct Entry;

 public:
  // A connection's place in the table, given back when destroyed (or when it was evicted).
  class Admission {
   public:
    Admission() = default;
    Admission(Admission&&) noexcept = default;
    Admission& operator=(Admission&& other) noexcept;
    ~Admission();

    // The TLS handshake is done: no longer counted in max_handshakes.
    void handshake_done();
    // A request on this connection was authenticated, or its client certificate verified:
    // never evicted from now on.
    void prove();
    // A request is in flight (counted): not evicted until as many release_request() calls.
    void hold_request();
    void release_request();
    // What drain_all() calls for this connection (thread-safe; it posts to the connection's
    // own thread); replaces what was set before.
    void on_drain(std::function<void()> drain);
    // What eviction calls for this connection, replacing the Evict given to admit() (same
    // rules): for a protocol that says goodbye before it closes.
    void on_evict(Evict evict);

   private:
    friend class ConnectionTable;
    Admission(ConnectionTable* table, std::shared_ptr<Entry> entry)
        : table_(table), entry_(std::move(entry)) {}
    void release();

    ConnectionTable* table_ = nullptr;
    std::shared_ptr<Entry> entry_;
  };

  ConnectionTable(Limits limits, OnEvicted on_evicted);
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // Takes a slot for a new connection from `client` (as a handshaking, unproven connection),
  // evicting older connections as the rules above say, or names the limit that refuses it.
  tl::expected<Admission, Limit> admit(const boost::asio::ip::address& client, Evict evict);

  std::size_t open() const;
  std::size_t handshakes() const;
  // The server is stopping: tells every open connection (each says its protocol's goodbye and
  // closes once its requests are answered).
  void drain_all();

 private:
  using Address = std::array<std::uint8_t, 16>;  // IPv4 as IPv4-mapped IPv6; IPv6 as its /64
  using Queue = std::list<std::shared_ptr<Entry>>;
  struct Client {
    std::size_t open = 0;
    Queue handshakes;  // oldest first
    Queue unproven;    // oldest first, evictable only
  };
  struct Entry {
    Address client{};
    Evict evict;
    bool released = false;  // evicted or closed: counts and queues no longer hold it
    bool proven = false;
    std::size_t requests = 0;  // in flight
    std::function<void()> drain;
    std::optional<Queue::iterator> in_all;
    std::optional<Queue::iterator> in_handshakes;
    std::optional<Queue::iterator> in_client_handshakes;
    std::optional<Queue::iterator> in_unproven;
    std::optional<Queue::iterator> in_client_unproven;
  };

  // Removes `entry` from every count and queue (lock held).
  void forget(Entry& entry);
  void leave_handshakes(Entry& entry, Client& client);
  void leave_unproven(Entry& entry, Client& client);
  // Forgets the front of `queue` and returns what closes it (lock held).
  Evict evict_front(Queue& queue);

  const Limits limits_;
  const OnEvicted on_evicted_;
  mutable std::mutex mutex_;
  std::size_t open_ = 0;
  Queue all_;
  Queue handshakes_;  // oldest first
  Queue unproven_;    // oldest first, handshaking or not
  std::map<Address, Client> clients_;
};

}  // namespace xks::proxy
