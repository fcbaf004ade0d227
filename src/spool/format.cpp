#include "spool/format.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>

#include "spool/crc32c.hpp"

namespace rtm::spool {
namespace {

template <typename T>
void put(char* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);  // little-endian hosts only (x86-64, aarch64)
}

template <typename T>
T get(const char* p) noexcept {
  T v{};
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

void encode_frame_into(char* out, std::uint64_t seq, std::int64_t received_at_ns, std::uint8_t flags,
                       std::string_view payload) noexcept {
  const auto len = static_cast<std::uint32_t>(frame_fixed + payload.size());
  put(out, frame_magic);
  put(out + 4, len);
  put(out + 12, seq);
  put(out + 20, received_at_ns);
  out[28] = static_cast<char>(flags);
  if (!payload.empty()) {
    std::memcpy(out + frame_overhead, payload.data(), payload.size());
  }
  std::uint32_t crc = crc32c(std::string_view(out + 4, 4));
  crc = crc32c(std::string_view(out + frame_prefix, len), crc);
  put(out + 8, crc);
}

void encode_frame(std::string& out, std::uint64_t seq, std::int64_t received_at_ns, std::uint8_t flags,
                  std::string_view payload) {
  const std::size_t at = out.size();
  out.resize(at + frame_overhead + payload.size());
  encode_frame_into(out.data() + at, seq, received_at_ns, flags, payload);
}

decode_status decode_frame(std::string_view bytes, frame_view& out) noexcept {
  if (bytes.size() < 4) {
    return decode_status::incomplete;
  }
  if (get<std::uint32_t>(bytes.data()) != frame_magic) {
    return decode_status::bad_magic;
  }
  if (bytes.size() < frame_prefix) {
    return decode_status::incomplete;
  }
  const auto len = get<std::uint32_t>(bytes.data() + 4);
  if (len < frame_fixed || len - frame_fixed > max_payload) {
    return decode_status::bad_length;
  }
  if (bytes.size() < frame_prefix + len) {
    return decode_status::incomplete;
  }
  std::uint32_t crc = crc32c(bytes.substr(4, 4));
  crc = crc32c(bytes.substr(frame_prefix, len), crc);
  if (crc != get<std::uint32_t>(bytes.data() + 8)) {
    return decode_status::bad_checksum;
  }
  out.seq = get<std::uint64_t>(bytes.data() + 12);
  out.received_at_ns = get<std::int64_t>(bytes.data() + 20);
  out.flags = static_cast<std::uint8_t>(bytes[28]);
  out.payload = bytes.substr(frame_overhead, len - frame_fixed);
  out.size = frame_prefix + len;
  return decode_status::ok;
}

std::size_t find_next_frame(std::string_view bytes, std::size_t from) noexcept {
  char magic[4];
  std::memcpy(magic, &frame_magic, 4);
  const std::string_view needle(magic, 4);
  for (std::size_t at = bytes.find(needle, from); at != std::string_view::npos; at = bytes.find(needle, at + 1)) {
    frame_view f;
    if (decode_frame(bytes.substr(at), f) == decode_status::ok) {
      return at;
    }
  }
  return std::string_view::npos;
}

std::string segment_file_name(std::uint64_t first_seq) {
  char name[32];
  const int n = std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return {name, static_cast<std::size_t>(n)};
}

bool parse_segment_file_name(std::string_view name, std::uint64_t& first_seq) noexcept {
  constexpr std::string_view suffix = ".seg";
  if (name.size() != 20 + suffix.size() || name.substr(20) != suffix) {
    return false;
  }
  const auto [end, ec] = std::from_chars(name.data(), name.data() + 20, first_seq);
  return ec == std::errc{} && end == name.data() + 20;
}

}  // namespace rtm::spool
