#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "pipeline/event.hpp"

// One Kafka record as the publisher keeps it until the cluster confirms it: every byte librdkafka needs (value, key,
// topic, header values) lives in ONE buffer, so a record costs a single allocation and can be produced again,
// unchanged, after a producer is recreated. librdkafka gets the value WITHOUT RD_KAFKA_MSG_F_COPY (it points into
// `bytes`), which is why the publisher must keep the record alive until librdkafka is done with it.
// The builders below decide everything the record carries, its headers included (headers() only lists them); the
// publisher hands the record over as it is. Pure data and builders; owned by the publisher on the io_context thread.
namespace rtm::kafka {

enum class record_kind : std::uint8_t {
  event,        // an envelope for an upstream event
  dead_letter,  // something that could not be normalized or delivered
  reply,        // the reply to a command (never in the spool: a command without a confirmed reply is read again)
};

enum class record_field : std::uint8_t {
  value,
  key,
  event,  // events: the event name; replies: the command id (the rtm-command-id header)
  connection,
  enterprise,
  error,           // dead letters: the rtm-error reason
  error_detail,    // dead letters: a human-readable detail (empty if none)
  original_topic,  // dead letters of failed deliveries: the topic the record was meant for
  source,          // the rtm-source header: acme | slack
  content_type,    // the content-type header
  truncated,       // dead letters: the rtm-truncated header (the original size, decimal) when the value was cut
  retry_attempt,   // events: the rtm-retry-attempt header (decimal) of a redelivered Socket Mode envelope
  topic,           // last, so the NUL that librdkafka needs can follow it in the buffer
  count_
};

// A Kafka header as librdkafka takes it (it copies both): a static name and a view of the value.
struct header_view {
  const char* name;
  std::string_view value;
};

// The most headers a record carries (a failed delivery's dead letter with every optional one).
inline constexpr std::size_t max_headers = 9;
using header_list = std::array<header_view, max_headers>;

class record {
 public:
  enum class state : std::uint8_t {
    waiting,    // not handed to the current producer (QUEUE_FULL, or waiting for a new producer)
    in_flight,  // handed to producer `generation`, no verdict yet
    done,       // persisted, or failed and dealt with: only a tombstone remains
  };

  record() = default;

  [[nodiscard]] std::string_view field(record_field f) const noexcept {
    const auto i = static_cast<std::size_t>(f);
    return std::string_view(bytes_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  [[nodiscard]] const char* topic_c_str() const noexcept { return bytes_.data() + offsets_[topic_index]; }
  [[nodiscard]] std::size_t byte_size() const noexcept { return bytes_.capacity(); }
  // The record's headers, in the contract's order, as its builder set them: views into the record's buffer, written
  // into `out`. Events: rtm-event, rtm-connection, rtm-source, content-type, then rtm-enterprise when set. Dead
  // letters: rtm-error, rtm-connection, rtm-source, content-type, then each of rtm-event, rtm-enterprise,
  // rtm-original-topic, rtm-error-detail and rtm-truncated that is set. Replies: rtm-command-id, rtm-connection,
  // content-type.
  [[nodiscard]] std::span<const header_view> headers(header_list& out) const noexcept;

  // Takes a buffer (its contents are discarded) whose capacity the next builder reuses: a settled record's buffer
  // can serve the next record without a new allocation.
  void recycle_bytes(std::string&& buffer) noexcept {
    bytes_ = std::move(buffer);
    bytes_.clear();
  }

  // Releases the bytes (a tombstone keeps only the bookkeeping). Returns them so the caller can keep them alive a
  // while longer if librdkafka may still reference them.
  std::string release_bytes() noexcept;

  std::uint64_t seq = 0;
  record_kind kind = record_kind::event;
  pipeline::source from = pipeline::source::acme;
  state st = state::waiting;
  bool maybe_persisted = false;      // an earlier producer may have written it: a re-production can duplicate it
  bool produced_by_retired = false;  // handed to a producer that has been retired since
  std::uint32_t generation = 0;      // the producer it was last handed to
  std::uint32_t truncated_from = 0;  // dead letters: original value size when it was cut, else 0
  // The durable spool's sequence number of the record (0: no spool). A failed delivery's dead letter takes it over
  // from the record it replaces, so the spool's commit point passes it only once the dead letter is delivered.
  std::uint64_t spool_seq = 0;
  // Who to tell once the record is durable (Socket Mode acknowledgements): confirmed by Kafka without a spool; with
  // one, the spool write already told, and this is empty. A failed delivery's dead letter takes it over.
  pipeline::durability_request ack{};
  std::chrono::steady_clock::time_point received_steady{};

 private:
  friend class record_builder;
  friend void encode_spooled(const record& r, std::string& out);
  friend bool decode_spooled(record& r, std::string_view payload);
  static constexpr std::size_t topic_index = static_cast<std::size_t>(record_field::topic);
  std::string bytes_;
  std::array<std::uint32_t, static_cast<std::size_t>(record_field::count_) + 1> offsets_{};
};

// Fills a record's buffer field by field, in record_field order (each field possibly empty); the envelope is written
// in place into buffer() so it is never copied twice.
class record_builder {
 public:
  record_builder(record& r, std::size_t reserve);
  std::string& buffer() noexcept { return r_.bytes_; }
  void end_field(record_field f) noexcept;  // the bytes appended since the previous field form `f`
  void add(record_field f, std::string_view text);
  void add_size(record_field f, std::uint32_t n);  // decimal; empty for 0
  void finish();                                   // NUL-terminates the topic, the last field

 private:
  record& r_;
  std::size_t next_ = 0;
};

// The record of an upstream event: value = envelope (id built here, once), key = team id, event headers
// (content-type: application/json).
// `topic` is the routed topic; `scratch` is a reusable buffer for the id. Throws std::bad_alloc only.
void build_event_record(record& r, const pipeline::event& ev, std::string_view topic, std::uint64_t event_seq,
                        std::string& scratch);

// Dead letters (both kinds) are keyed by the connection name: a connection's dead letters stay in order on one
// partition, and no team id exists for most of them.
//
// A dead letter: value = the raw frame, cut to `max_value` bytes (then truncated_from = original size; also when the
// session passed only a prefix, dl.original_size); rtm-error-detail = dl.detail; content-type:
// application/octet-stream.
void build_dead_letter_record(record& r, const pipeline::dead_letter& dl, std::string_view topic,
                              std::size_t max_value);

// The reply to a command: value = the reply JSON (commands::reply_value), key = the connection name, headers
// rtm-command-id, rtm-connection, content-type: application/json.
void build_reply_record(record& r, std::string_view topic, std::string_view connection, std::string_view command_id,
                        std::string_view value);

// The dead letter of an event record whose delivery failed permanently: value = its envelope (cut to `max_value`),
// rtm-error = `reason`, rtm-original-topic = where it was meant to go; content-type: application/json, or
// application/octet-stream once cut (no longer valid JSON).
void build_failed_delivery_record(record& r, const record& failed, std::string_view topic, std::string_view reason,
                                  std::string_view detail, std::size_t max_value);

}  // namespace rtm::kafka
