#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "pipeline/durability.hpp"

// The neutral types between the two halves of the bridge: what an upstream session (upstream/) hands to whatever
// publishes it (kafka/, or a spool in front of it). Neither half includes the other. Everything here is a view into
// the session's receive buffer: valid only for the duration of the sink call, which runs on the io_context thread.
namespace rtm::pipeline {

enum class source { acme, slack };

[[nodiscard]] constexpr std::string_view to_string(source s) noexcept {
  return s == source::acme ? "acme" : "slack";
}

struct event {
  std::string_view connection;  // the config name of the connection
  source from = source::acme;
  std::string_view name;           // acme: the Socket.IO event name; slack: type[.subtype]
  std::string_view name_space;     // for topic templates: acme: the name before ':'; slack: "slack"
  std::string_view team_id;        // the record key; never empty (sessions dead-letter events without one)
  std::string_view enterprise_id;  // slack Enterprise Grid id, empty otherwise
  std::string_view payload;        // raw JSON as received: acme the event argument, slack the whole frame
  // acme: the event's arguments after the first, raw as received (comma-separated JSON values), empty when the
  // event had at most one; published as the envelope's "args" array. Always empty for slack.
  std::string_view extra_args;
  std::chrono::system_clock::time_point received_at;
  std::chrono::steady_clock::time_point received_steady;  // for the receipt→ack latency histogram
  // When set, the envelope id is CONNECTION:stable_id instead of CONNECTION:MILLIS:SEQ (Socket Mode: the event_id,
  // so that Slack's redeliveries of one event carry one id).
  std::string_view stable_id;
  // Who to tell once the event's record is durable (pipeline/durability.hpp); nobody by default.
  durability_request ack{};
  // Extra headers some dialects add (Socket Mode: rtm-retry-attempt for a redelivered envelope); 0 = none.
  std::uint32_t retry_attempt = 0;
};

// Dead-letter reasons are short snake_case words: the publisher puts them in the record and in a metrics label.
struct dead_letter {
  std::string_view connection;
  source from = source::acme;
  std::string_view reason;  // e.g. "bad_json", "no_team_id", "unknown_packet", "binary_event", "frame_too_large"
  std::string_view raw;     // the raw frame as received, or its prefix (size limits), or nothing (refused unread)
  std::chrono::system_clock::time_point received_at;
  // Size limits: what an operator needs to know (sizes and limits, never payload).
  std::string_view detail{};
  // Size limits: the frame's full size when `raw` is only a prefix of it (or empty), else 0.
  std::size_t original_size = 0;
};

// An event above its connection's limits.max_event_size is dead-lettered (`event_too_large`) with at most this much
// of its start: enough to identify it, and far below any broker's message size limit.
inline constexpr std::size_t oversized_event_prefix = std::size_t{64} * 1024;

// Implemented by the publishing side (kafka::publisher). Calls arrive on the io_context thread; an implementation
// must not throw (the sessions call it from Asio handlers) and must copy what it keeps.
class sink {
 public:
  sink() = default;
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;
  sink(sink&&) = delete;
  sink& operator=(sink&&) = delete;
  virtual ~sink() = default;

  virtual void on_event(const event& ev) noexcept = 0;
  virtual void on_dead_letter(const dead_letter& dl) noexcept = 0;
  // Where sessions register for acknowledgement after durability; null when this sink cannot tell. Shared, so that a
  // session that outlives the sink (destroyed late, with the io_context's queued handlers) finds it gone rather
  // than dangling: sessions keep a weak_ptr.
  virtual std::shared_ptr<durability_registry> durability() noexcept { return nullptr; }
};

}  // namespace rtm::pipeline
