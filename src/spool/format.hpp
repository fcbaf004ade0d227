#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// The spool's on-disk record frame (little-endian), pure encode/decode, no I/O:
//
//   magic u32 | len u32 | crc32c u32 | seq u64 | received_at i64 | flags u8 | payload (len - 17 bytes)
//
// `len` counts everything after the crc field; the crc covers the len field and everything after the crc field,
// so a torn or flipped length is caught as surely as a torn payload. The magic lets a reader resynchronise after
// a corrupted length (it scans for the next magic that starts a valid frame). Frames never span segment files. A
// segment file is `<first seq, 20 digits>.seg`; sequence numbers increase strictly across segments.
namespace rtm::spool {

inline constexpr std::uint32_t frame_magic = 0x534D5452U;  // "RTMS" in the file
inline constexpr std::size_t frame_prefix = 12;            // magic, len, crc
inline constexpr std::size_t frame_fixed = 17;             // seq, received_at, flags: the start of `len`
inline constexpr std::size_t frame_overhead = frame_prefix + frame_fixed;
// The largest payload a frame may carry: far above any event the upstream limits let through (max_event_size), and
// a bound that keeps a corrupted length from making a reader allocate gigabytes.
inline constexpr std::size_t max_payload = std::size_t{64} << 20U;

struct frame_view {
  std::uint64_t seq = 0;
  std::int64_t received_at_ns = 0;  // the event's receipt, ns since the Unix epoch
  std::uint8_t flags = 0;
  std::string_view payload;
  std::size_t size = 0;  // the whole frame's bytes
};

// Appends one frame to `out`.
void encode_frame(std::string& out, std::uint64_t seq, std::int64_t received_at_ns, std::uint8_t flags,
                  std::string_view payload);
// Writes one frame into `out`, which must hold frame_overhead + payload.size() bytes.
void encode_frame_into(char* out, std::uint64_t seq, std::int64_t received_at_ns, std::uint8_t flags,
                       std::string_view payload) noexcept;

enum class decode_status {
  ok,
  incomplete,  // `bytes` ends inside the frame (or before its prefix): more bytes may complete it
  bad_magic,
  bad_length,  // shorter than the fixed part, or above max_payload
  bad_checksum,
};

// Decodes the frame at the start of `bytes`.
[[nodiscard]] decode_status decode_frame(std::string_view bytes, frame_view& out) noexcept;

// The offset in `bytes` of the next position at or after `from` where a valid, complete frame starts, or npos.
// A resync after corruption: a magic alone is not enough (a payload may contain it), the frame must check.
[[nodiscard]] std::size_t find_next_frame(std::string_view bytes, std::size_t from) noexcept;

// The segment file name for a segment starting at `first_seq`, and back (false when `name` is not one).
[[nodiscard]] std::string segment_file_name(std::uint64_t first_seq);
[[nodiscard]] bool parse_segment_file_name(std::string_view name, std::uint64_t& first_seq) noexcept;

}  // namespace rtm::spool
